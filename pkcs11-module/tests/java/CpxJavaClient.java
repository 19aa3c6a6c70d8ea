// The Java client pkcs11-module/tests/java.rs runs: SunPKCS11 over the built module, compiled by
// the test with javac together with docs/examples/java/AuthKeyManager.java. It prints facts, one
// per line, tab-separated; the Rust test asserts them. The PIN comes on stdin, never in argv.
//
//   keystore CFG                       aliases, then every signature of both keys, verified
//   tls CFG HOST PORT CAFILE KM CAP    a TLS client login; KM: auth (AuthKeyManager), SunX509 or
//                                      PKIX (Java's own); CAP: none, or sslparams (TLS 1.2 only,
//                                      through SSLParameters)

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.FileInputStream;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.Security;
import java.security.Signature;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;
import java.util.Arrays;
import java.util.Collections;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

public final class CpxJavaClient {
    private static final String[] ALGORITHMS = {
        "SHA1withRSA", "SHA256withRSA", "SHA384withRSA", "SHA512withRSA", "NONEwithRSA", "RSASSA-PSS"
    };

    public static void main(String[] args) throws Exception {
        char[] pin = readPin();
        try {
            Provider p = Security.getProvider("SunPKCS11").configure(args[1]);
            // JSSE finds the signer of a TLS CertificateVerify among the installed providers:
            // without this, no provider takes the card's key ("No supported CertificateVerify
            // signature algorithm for RSA key"). Last in the list, so that software keys keep
            // their usual providers.
            Security.addProvider(p);
            KeyStore card = KeyStore.getInstance("PKCS11", p);
            card.load(null, pin);
            switch (args[0]) {
                case "keystore":
                    keystore(p, card);
                    break;
                case "tls":
                    System.exit(tls(card, pin, args[2], Integer.parseInt(args[3]), args[4], args[5], args[6]));
                    break;
                default:
                    throw new IllegalArgumentException(args[0]);
            }
        } finally {
            Arrays.fill(pin, '\0');
        }
    }

    private static char[] readPin() throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line = in.readLine();
        if (line == null) {
            throw new IllegalStateException("no PIN on stdin");
        }
        return line.toCharArray();
    }

    private static void keystore(Provider p, KeyStore card) throws Exception {
        for (String alias : Collections.list(card.aliases())) {
            X509Certificate cert = (X509Certificate) card.getCertificate(alias);
            System.out.println("alias\t" + alias + "\t" + (card.isKeyEntry(alias) ? "key" : "cert") + "\t"
                    + (cert == null ? "-" : hex(cert.getEncoded())));
        }
        byte[] data = "cpx: signed by SunPKCS11".getBytes(StandardCharsets.UTF_8);
        for (String alias : Collections.list(card.aliases())) {
            if (!card.isKeyEntry(alias)) {
                continue;
            }
            PrivateKey key = (PrivateKey) card.getKey(alias, null);
            X509Certificate cert = (X509Certificate) card.getCertificate(alias);
            for (String alg : ALGORITHMS) {
                String result;
                try {
                    result = sign(p, key, cert, alg, data);
                } catch (Exception e) {
                    result = "error\t" + causes(e);
                }
                System.out.println("sign\t" + alias + "\t" + alg + "\t" + result);
            }
        }
    }

    /** Signs with the card, verifies with the certificate's key in software (SunRsaSign). */
    private static String sign(Provider p, PrivateKey key, X509Certificate cert, String alg, byte[] data)
            throws Exception {
        byte[] input = data;
        PSSParameterSpec pss = new PSSParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, 32, 1);
        if (alg.equals("NONEwithRSA")) {
            // What a TLS 1.2 stack hands NONEwithRSA: a SHA-256 DigestInfo.
            byte[] prefix = {
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, (byte) 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
                0x05, 0x00, 0x04, 0x20
            };
            byte[] hash = MessageDigest.getInstance("SHA-256").digest(data);
            input = new byte[prefix.length + hash.length];
            System.arraycopy(prefix, 0, input, 0, prefix.length);
            System.arraycopy(hash, 0, input, prefix.length, hash.length);
        }
        Signature signer = Signature.getInstance(alg, p);
        if (alg.equals("RSASSA-PSS")) {
            signer.setParameter(pss);
        }
        signer.initSign(key);
        signer.update(input);
        byte[] sig = signer.sign();
        // Any installed provider but the card's: SunRsaSign (NONEwithRSA: SunJCE's RSA cipher).
        Signature verifier = Signature.getInstance(alg);
        if (alg.equals("RSASSA-PSS")) {
            verifier.setParameter(pss);
        }
        verifier.initVerify(cert.getPublicKey());
        verifier.update(input);
        if (verifier.getProvider() == p) {
            return "verified-by-the-card-provider";
        }
        return verifier.verify(sig) ? "verified" : "bad-signature";
    }

    private static int tls(KeyStore card, char[] pin, String host, int port, String caFile, String km, String cap)
            throws Exception {
        KeyManager[] keyManagers;
        if (km.equals("auth")) {
            keyManagers = new KeyManager[] {new AuthKeyManager(card)};
        } else {
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(km);
            kmf.init(card, pin);
            keyManagers = kmf.getKeyManagers();
        }
        KeyStore trust = KeyStore.getInstance("PKCS12");
        trust.load(null, null);
        try (InputStream in = new FileInputStream(caFile)) {
            trust.setCertificateEntry("server-ca", CertificateFactory.getInstance("X.509").generateCertificate(in));
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
        tmf.init(trust);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(keyManagers, tmf.getTrustManagers(), null);
        try (SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket(host, port)) {
            if (cap.equals("sslparams")) {
                SSLParameters params = s.getSSLParameters();
                params.setProtocols(new String[] {"TLSv1.2"});
                s.setSSLParameters(params);
            }
            System.out.println("offered\t" + String.join(",", s.getEnabledProtocols()));
            s.startHandshake();
            System.out.println("protocol\t" + s.getSession().getProtocol());
            X509Certificate[] sent = (X509Certificate[]) s.getSession().getLocalCertificates();
            System.out.println("sent\t" + (sent == null ? "-" : hex(sent[0].getEncoded())));
            OutputStream out = s.getOutputStream();
            out.write("GET / HTTP/1.0\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            out.flush();
            ByteArrayOutputStream page = new ByteArrayOutputStream();
            s.getInputStream().transferTo(page);
            System.out.println("page");
            System.out.println(page.toString(StandardCharsets.UTF_8));
            return 0;
        } catch (Exception e) {
            System.out.println("tls-error\t" + causes(e));
            return 2;
        }
    }

    /** The exception and its causes, one after the other. */
    private static String causes(Throwable e) {
        StringBuilder b = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (b.length() > 0) {
                b.append(" <- ");
            }
            b.append(t.getClass().getName()).append(": ").append(t.getMessage());
        }
        return b.toString().replace('\n', ' ').replace('\t', ' ');
    }

    private static String hex(byte[] b) {
        StringBuilder s = new StringBuilder();
        for (byte x : b) {
            s.append(String.format("%02x", x));
        }
        return s.toString();
    }
}
