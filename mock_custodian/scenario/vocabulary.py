"""The scenario file's vocabulary: PG&E's user types, statuses, data groups, customer classes and cities."""

USER_TYPES = ("standard", "self_access", "eef", "cca")
REGISTRATION_STATUSES = ("submitted", "in_review", "accepted", "approved", "on_hold", "expired", "terminated")
DATA_GROUPS = ("Basic", "Account", "Billing", "Usage", "ProgramEnrollment")
CUSTOMER_CLASSES = ("RES", "AGR", "COM/IND", "OTHER")
HISTORY_MONTHS = (24, 36, 48)

# Cities in PG&E's service territory: (city, ZIP prefix, area code, California climate zone).
PGE_CITIES = (
    ("San Francisco", "941", "415", 3),
    ("Oakland", "946", "510", 3),
    ("Berkeley", "947", "510", 3),
    ("San Jose", "951", "408", 4),
    ("Sacramento", "958", "916", 12),
    ("Fresno", "937", "559", 13),
    ("Bakersfield", "933", "661", 13),
    ("Santa Rosa", "954", "707", 2),
    ("Chico", "959", "530", 11),
    ("Stockton", "952", "209", 12),
    ("Salinas", "939", "831", 3),
    ("San Luis Obispo", "934", "805", 5),
    ("Eureka", "955", "707", 1),
)
