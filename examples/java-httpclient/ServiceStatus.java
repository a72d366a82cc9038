// A Java 11+ java.net.http.HttpClient client of PG&E Share My Data: client-credentials token, then
// ReadServiceStatus ten times. One SSLContext (from your PKCS#12 bundle) is shared and a new HttpClient is
// built per call, as much production code does; JSSE's client session cache stays on. No dependencies:
//
//   java ServiceStatus.java https://127.0.0.1:8443 ca.pem bundle.p12 p12-password 00101 client-secret
//
// The PKCS#12 bundle must hold your key, your certificate and the intermediate (PG&E answers
// 400 "Invalid Certificate" to a leaf sent alone); mock-custodian serves one at
// GET /__sim/credentials/{client_id}/bundle.p12?password=... Calls are paced to PG&E's 1 request/second
// per vendor. Prints one line per call; exits non-zero unless every call answered 200.
import java.io.FileInputStream;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.util.Base64;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

public class ServiceStatus {
    public static void main(String[] args) throws Exception {
        if (args.length != 6) {
            System.err.println("usage: java ServiceStatus.java API_BASE CA_PEM BUNDLE_P12 P12_PASSWORD CLIENT_ID CLIENT_SECRET");
            System.exit(2);
        }
        String api = args[0];
        SSLContext tls = sslContext(args[1], args[2], args[3].toCharArray());
        String basic = Base64.getEncoder().encodeToString((args[4] + ":" + args[5]).getBytes(StandardCharsets.UTF_8));
        HttpResponse<String> token = send(tls, HttpRequest.newBuilder(
                URI.create(api + "/datacustodian/oauth/v2/token?grant_type=client_credentials"))
                .header("Authorization", "Basic " + basic)
                .POST(HttpRequest.BodyPublishers.noBody()).build());
        if (token.statusCode() != 200) {
            System.err.println("token: " + token.statusCode() + " " + token.body());
            System.exit(2);
        }
        Matcher m = Pattern.compile("\"client_access_token\"\\s*:\\s*\"([^\"]+)\"").matcher(token.body());
        if (!m.find()) throw new IllegalStateException("no client_access_token in " + token.body());
        int calls = Integer.parseInt(System.getenv().getOrDefault("PGE_CALLS", "10"));
        long paceMs = Long.parseLong(System.getenv().getOrDefault("PGE_PACE_MS", "1100"));
        int ok = 0;
        for (int i = 1; i <= calls; i++) {
            if (i > 1) Thread.sleep(paceMs);
            HttpResponse<String> status = send(tls, HttpRequest.newBuilder(
                    URI.create(api + "/GreenButtonConnect/espi/1_1/resource/ReadServiceStatus"))
                    .header("Authorization", "Bearer " + m.group(1)).GET().build());
            System.out.println("call " + i + ": " + status.statusCode()
                    + (status.statusCode() == 200 ? "" : " " + status.body()));
            if (status.statusCode() == 200) ok++;
        }
        System.out.println(ok + " of " + calls + " calls answered 200");
        System.exit(ok == calls ? 0 : 1);
    }

    /** A new client per call, sharing one SSLContext (and so its TLS session cache). */
    static HttpResponse<String> send(SSLContext tls, HttpRequest request) throws Exception {
        HttpClient client = HttpClient.newBuilder().sslContext(tls).version(HttpClient.Version.HTTP_1_1).build();
        return client.send(request, HttpResponse.BodyHandlers.ofString());
    }

    static SSLContext sslContext(String caPem, String bundle, char[] password) throws Exception {
        KeyStore keys = KeyStore.getInstance("PKCS12");
        try (InputStream in = new FileInputStream(bundle)) {
            keys.load(in, password);
        }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(keys, password);
        KeyStore trust = KeyStore.getInstance(KeyStore.getDefaultType());
        trust.load(null, null);
        try (InputStream in = new FileInputStream(caPem)) {
            int n = 0;
            for (Certificate ca : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                trust.setCertificateEntry("ca-" + n++, ca);
            }
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        SSLContext tls = SSLContext.getInstance("TLS");
        tls.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
        return tls;
    }
}
