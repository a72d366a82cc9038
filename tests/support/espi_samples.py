"""Sample ESPI inputs shared by the writer tests (tests/domain/test_espi_schema.py, test_espi_feed.py): a scope
string, an ApplicationInformation and a customer with hostile characters in its names."""

from __future__ import annotations

from mock_custodian.espi import AccountInfo, Address, AgreementInfo, CustomerInfo, DemandResponseEnrollment, MeterInfo

SCOPE = ("FB=1_3_8_13_14_18_19_31_32_35_37_38_39_40_4_5_10_15_16_46_47;"
         "AdditionalScope=Usage_Billing_Basic_Account_ProgramEnrollment;IntervalDuration=900_3600;"
         "BlockDuration=Daily;HistoryLength=94608000;AccountCollection=2;BR=00123;dataCustodianId=PGE")

APPLICATION_INFO = {
    "dataCustodianApplicationStatus": 1,
    "thirdPartyApplicationDescription": "Energy insights & alerts <beta>",
    "thirdPartyPhone": "415-555-0100",
    "thirdPartyNotifyUri": "https://tp.example.com/notify",
    "thirdPartyScopeSelectionScreenURI": "https://tp.example.com/oauth",
    "thirdPartyUserPortalScreenURI": "https://tp.example.com/portal",
    "client_secret": "0b6a1f0e-6c1d-4a4b-9d55-3f1b2c3d4e5f",
    "client_name": "Acme Energy",
    "redirect_uri": "https://tp.example.com/callback",
    "client_id": "00123",
    "client_id_issued_at": 1719853925000,
    "contacts": "ops@tp.example.com",
    "scope": "FB=1_3_8_13_14_18_19_31_32_35_37_38_39_40_4_5_10_15_16_46_47;IntervalDuration=900_3600;"
             "BlockDuration=Daily;HistoryLength=94608000;BR=00123;dataCustodianId=PGE",
    "registration_access_token": "a1b2c3d4-0000-4000-8000-000000000000",
}

CUSTOMER = CustomerInfo(
    customer_number="2626940910",
    name="María O'Brien & Söhne <Trust>",
    accounts=[AccountInfo(
        account_number="1234567890",
        billing_address=Address("PO Box 77", "Oakland", "94611"),
        agreements=[
            AgreementInfo("5391320451", "0098765432", "RES", 1577865600, "8812345", Address("12 Elm St", "Oakland",
                                                                                            "94610"),
                          meters=[MeterInfo("1009876543", interval_length=3600)],
                          dr_programs=[DemandResponseEnrollment("SmartAC", enrollment_date=1600000000,
                                                                term_date_without_financial=1631536000)]),
            AgreementInfo("5391320452", "0098765433", "RES", 1577865600, "8812345", Address("12 Elm St", "Oakland",
                                                                                            "94610"),
                          meters=[MeterInfo("G7733", meter_type="Gas SmartMeter", interval_length=86400)]),
        ],
    )],
)
