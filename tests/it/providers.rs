//! The pinned provider host keys, checked with `ssh-keygen -lf` as the oracle.

use keyclone::providers::Registry;

use crate::support::ssh_keygen;

#[test]
fn every_pinned_key_fingerprint_matches_ssh_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let mut count = 0;
    for p in Registry::builtin().all() {
        for pin in &p.pins {
            let key = pin.key.as_ref().expect("built-in pins carry the key");
            let file = dir.path().join(format!("pin{count}"));
            std::fs::write(
                &file,
                format!("{} {key}\n", pin.endpoint.known_hosts_name()),
            )
            .unwrap();
            let out = ssh_keygen(&["-lf", file.to_str().unwrap()]);
            out.ok();
            let fp = out.stdout.split_whitespace().nth(1).unwrap();
            assert_eq!(
                fp,
                pin.fingerprint,
                "{} {}",
                p.id,
                pin.endpoint.known_hosts_name()
            );
            count += 1;
        }
        for r in &p.revoked {
            if let Some(key) = &r.key {
                let file = dir.path().join(format!("rev{count}"));
                std::fs::write(&file, format!("{key}\n")).unwrap();
                let out = ssh_keygen(&["-lf", file.to_str().unwrap()]);
                assert_eq!(out.stdout.split_whitespace().nth(1).unwrap(), r.fingerprint);
                count += 1;
            }
        }
    }
    assert_eq!(count, 22);
}
