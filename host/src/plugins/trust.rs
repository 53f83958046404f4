//! Extra certificate authorities a connection trusts (`caCertificates`),
//! for ERPs whose TLS certificate comes from a private CA (SAP Business One's
//! Service Layer on :50000 commonly has one).
//!
//! Pure: PEM in, DER certificates out, each checked to be usable as a trust
//! anchor. The API validates a connection with this, and the runtime builds
//! its TLS trust from the same result.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::{PemObject, SectionKind};

/// The most certificates one connection may list.
pub const MAX_CA_CERTIFICATES: usize = 32;

/// Why a connection's `caCertificates` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CaCertificatesError {
    /// No `-----BEGIN CERTIFICATE-----` block.
    #[error(
        "caCertificates holds no certificate: paste the CA's certificate in PEM form \
         (`-----BEGIN CERTIFICATE-----` …)"
    )]
    Empty,
    /// The PEM text is broken.
    #[error("caCertificates is not valid PEM ({0}): paste the CA's certificate as exported")]
    Pem(String),
    /// A block is not an X.509 certificate a CA could sign with.
    #[error(
        "certificate {index} in caCertificates cannot be a trust anchor ({reason}): \
         paste the certificate of the CA, not a key or a request"
    )]
    NotAnAnchor {
        /// Its position, from 1.
        index: usize,
        /// What the parser found.
        reason: String,
    },
    /// More than [`MAX_CA_CERTIFICATES`].
    #[error("caCertificates lists {0} certificates; at most {MAX_CA_CERTIFICATES} are accepted")]
    TooMany(usize),
}

/// Parses a connection's `caCertificates`: one or more PEM certificates.
/// Other PEM blocks (a private key pasted by mistake) are refused rather
/// than ignored.
pub fn parse_ca_certificates(
    pem: &str,
) -> Result<Vec<CertificateDer<'static>>, CaCertificatesError> {
    let mut certificates = Vec::new();
    for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem.as_bytes()) {
        match item {
            Ok((SectionKind::Certificate, der)) => certificates.push(CertificateDer::from(der)),
            Ok((kind, _)) => {
                return Err(CaCertificatesError::NotAnAnchor {
                    index: certificates.len() + 1,
                    reason: format!("a {kind:?} block, not a certificate"),
                });
            }
            Err(error) => return Err(CaCertificatesError::Pem(error.to_string())),
        }
    }
    if certificates.is_empty() {
        return Err(CaCertificatesError::Empty);
    }
    if certificates.len() > MAX_CA_CERTIFICATES {
        return Err(CaCertificatesError::TooMany(certificates.len()));
    }
    for (i, certificate) in certificates.iter().enumerate() {
        let mut store = rustls::RootCertStore::empty();
        store
            .add(certificate.clone())
            .map_err(|error| CaCertificatesError::NotAnAnchor {
                index: i + 1,
                reason: error.to_string(),
            })?;
    }
    Ok(certificates)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A new self-signed CA's certificate, in PEM.
    pub(crate) fn ca_pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn certificates_table() {
        let one = ca_pem();
        let two = format!("{}\n{}", ca_pem(), ca_pem());
        assert_eq!(parse_ca_certificates(&one).unwrap().len(), 1);
        assert_eq!(parse_ca_certificates(&two).unwrap().len(), 2);
        // text around the blocks is tolerated, as exported bundles have it
        assert_eq!(
            parse_ca_certificates(&format!("# our CA\n{one}"))
                .unwrap()
                .len(),
            1
        );

        let key = rcgen::KeyPair::generate().unwrap().serialize_pem();
        let garbage = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n";
        let broken = "-----BEGIN CERTIFICATE-----\nMIIB\n";
        let too_many = ca_pem().repeat(MAX_CA_CERTIFICATES + 1);
        let refused = [
            ("", "holds no certificate"),
            ("just text", "holds no certificate"),
            (key.as_str(), "cannot be a trust anchor"),
            (garbage, "cannot be a trust anchor"),
            (broken, "not valid PEM"),
            (too_many.as_str(), "at most 32"),
        ];
        for (pem, expected) in refused {
            let error = parse_ca_certificates(pem).unwrap_err().to_string();
            assert!(error.contains(expected), "{pem:?}: {error}");
        }
    }
}
