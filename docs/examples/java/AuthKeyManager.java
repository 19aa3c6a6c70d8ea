// A key manager that logs in over TLS with the CPS card's AUTHENTICATION key.
//
// Java's own key managers (KeyManagerFactory "SunX509" and "PKIX") take the first RSA key entry
// whose certificate matches the server's list of CAs. A CPS card has two, issued by the same CA:
// "Certificat d'Authentification CPS" and "Certificat de Signature CPS", and both default key
// managers pick the SIGNATURE one. That key is for non-repudiation signatures (documents,
// prescriptions), not for logging in: servers refuse it or take it for a legal signature.
// This class always answers the authentication entry instead.
//
// Use (see docs/clients.md, section Java; pkcs11-module/tests/java.rs runs this very file):
//
//     Provider p = Security.getProvider("SunPKCS11").configure("/path/to/cpx-pkcs11.cfg");
//     Security.addProvider(p);                   // TLS looks for the card's signer there
//     KeyStore card = KeyStore.getInstance("PKCS11", p);
//     card.load(null, pin);                      // C_Login with the card's PIN
//     SSLContext tls = SSLContext.getInstance("TLS");
//     tls.init(new KeyManager[] {new AuthKeyManager(card)}, trustManagers, null);
//
// No dependency beyond the JDK (9 or later; tested with OpenJDK 17).

import java.net.Socket;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.Arrays;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedKeyManager;

/** Client-side key manager that always offers the CPS authentication key. */
public final class AuthKeyManager extends X509ExtendedKeyManager {
    /** The label (SunPKCS11 alias) of the authentication certificate on CPS3 and CPS4 cards. */
    public static final String AUTH_ALIAS = "Certificat d'Authentification CPS";

    private final String alias;
    private final PrivateKey key;
    private final X509Certificate[] chain;

    /**
     * Reads the authentication entry of a logged-in SunPKCS11 key store (the card).
     *
     * @throws GeneralSecurityException when the card has no such entry or its key is not RSA
     */
    public AuthKeyManager(KeyStore card) throws GeneralSecurityException {
        this(card, AUTH_ALIAS);
    }

    /** Same, for another alias (a card whose labels differ). */
    public AuthKeyManager(KeyStore card, String alias) throws GeneralSecurityException {
        if (!card.isKeyEntry(alias)) {
            throw new GeneralSecurityException(
                    "no key entry \"" + alias + "\" on the card (is the PIN given, the card inserted?)");
        }
        // The token is already logged in: SunPKCS11 ignores the key password.
        this.key = (PrivateKey) card.getKey(alias, null);
        if (key == null || !"RSA".equals(key.getAlgorithm())) {
            throw new GeneralSecurityException("entry \"" + alias + "\" has no RSA private key");
        }
        Certificate[] certs = card.getCertificateChain(alias);
        if (certs == null || certs.length == 0) {
            throw new GeneralSecurityException("entry \"" + alias + "\" has no certificate");
        }
        this.chain = Arrays.stream(certs).map(c -> (X509Certificate) c).toArray(X509Certificate[]::new);
        this.alias = alias;
    }

    /** The authentication alias when the server accepts an RSA key, else none. */
    @Override
    public String chooseClientAlias(String[] keyTypes, Principal[] issuers, Socket socket) {
        return offer(keyTypes);
    }

    @Override
    public String chooseEngineClientAlias(String[] keyTypes, Principal[] issuers, SSLEngine engine) {
        return offer(keyTypes);
    }

    private String offer(String[] keyTypes) {
        // TLS 1.2 and 1.3 both ask for "RSA" for an rsaEncryption key (PKCS#1 v1.5 or
        // rsa_pss_rsae schemes). The server's CA list is not checked: the server says no if it
        // does not trust the card's CA, and a silent "no certificate" is harder to diagnose.
        if (keyTypes != null && Arrays.asList(keyTypes).contains("RSA")) {
            return alias;
        }
        return null;
    }

    @Override
    public String[] getClientAliases(String keyType, Principal[] issuers) {
        return "RSA".equals(keyType) ? new String[] {alias} : null;
    }

    @Override
    public X509Certificate[] getCertificateChain(String requested) {
        return alias.equals(requested) ? chain.clone() : null;
    }

    @Override
    public PrivateKey getPrivateKey(String requested) {
        return alias.equals(requested) ? key : null;
    }

    // A client key manager: never a server's key.
    @Override
    public String[] getServerAliases(String keyType, Principal[] issuers) {
        return null;
    }

    @Override
    public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
        return null;
    }

    @Override
    public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
        return null;
    }
}
