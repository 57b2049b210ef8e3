//! Certificates made at test time (rcgen, ring backend): a CA, and leaf
//! certificates it signs for 127.0.0.1 and `localhost`, usable as server
//! and client certificates alike, written as PEM files into a directory.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

/// A CA: its certificate (also written to `ca.pem`) and key.
pub struct Ca {
    pub pem: PathBuf,
    cert: rcgen::Certificate,
    key: KeyPair,
    dir: PathBuf,
}

/// A leaf certificate's files.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Ca {
    /// A new CA named `name`, its certificate written to `dir/{name}.pem`.
    pub fn new(dir: &Path, name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, format!("burrow test CA {name}"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("self-sign the CA");
        let pem = dir.join(format!("{name}.pem"));
        std::fs::write(&pem, cert.pem()).expect("write CA");
        Ca { pem, cert, key, dir: dir.to_owned() }
    }

    /// A certificate for `names` (IPs or DNS names) signed by this CA,
    /// written to `dir/{file}.crt` and `.key`.
    pub fn leaf(&self, file: &str, names: &[&str]) -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        let mut params = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, file);
        params.extended_key_usages =
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.cert, &self.key).expect("sign the leaf");
        let leaf =
            Leaf { cert: self.dir.join(format!("{file}.crt")), key: self.dir.join(format!("{file}.key")) };
        std::fs::write(&leaf.cert, cert.pem()).expect("write cert");
        std::fs::write(&leaf.key, key.serialize_pem()).expect("write key");
        leaf
    }

    /// A leaf for 127.0.0.1 and `localhost`.
    pub fn local(&self, file: &str) -> Leaf {
        self.leaf(file, &["127.0.0.1", "localhost"])
    }
}

/// What a cluster with `[cluster] tls = true` runs with: one CA, and one
/// certificate every member presents (as server and as client).
#[derive(Debug, Clone)]
pub struct ClusterTls {
    pub ca: PathBuf,
    pub member: Leaf,
}

impl ClusterTls {
    /// A CA and a member certificate for 127.0.0.1, in `dir`.
    pub fn new(dir: &Path) -> ClusterTls {
        let ca = Ca::new(dir, "cluster-ca");
        ClusterTls { member: ca.local("member"), ca: ca.pem }
    }

    /// The server flags of a member.
    pub fn args(&self) -> Vec<String> {
        let p = |p: &Path| p.display().to_string();
        vec![
            "--tls-cert-file".into(),
            p(&self.member.cert),
            "--tls-key-file".into(),
            p(&self.member.key),
            "--tls-ca-file".into(),
            p(&self.ca),
        ]
    }

    /// A client trusting the CA and presenting the member certificate.
    pub fn client(&self) -> burrow_client::TlsOptions {
        burrow_client::TlsOptions::from_files(&self.ca, Some((&self.member.cert, &self.member.key)))
            .expect("client TLS options")
    }
}
