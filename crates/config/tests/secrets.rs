//! Secret settings: `display current-configuration` shows them masked;
//! the text that crosses nowhere (the node file) keeps them.

use hotsync_config::{ConfigStore, HrpSettings, SECRET_MASK, mask_secrets};

const TEXT: &str = "#\n sysname FW\n hrp enable\n hrp authentication-key Very-Secret-1\n#\nvsys name v1 id 1\n#\nreturn\n";

#[test]
fn displays_mask_keys() {
    let s = ConfigStore::parse(TEXT).unwrap();
    let shown = s.render_masked();
    assert!(!shown.contains("Very-Secret-1"), "{shown}");
    assert!(
        shown.contains(&format!("hrp authentication-key {SECRET_MASK}\n")),
        "{shown}"
    );
    assert!(shown.contains("hrp enable"));
    let root = s.render_vsys("").unwrap();
    assert!(!root.contains("Very-Secret-1"), "{root}");
    // The model itself keeps the key.
    assert!(s.render().contains("Very-Secret-1"));
    let key = HrpSettings::from_store(&s).unwrap().authentication_key;
    assert_eq!(key.as_deref(), Some("Very-Secret-1"));
}

#[test]
fn a_pasted_mask_is_not_a_key() {
    let pasted = ConfigStore::parse(TEXT).unwrap().render_masked();
    let err = ConfigStore::parse(&pasted).unwrap_err().to_string();
    assert!(err.contains("the key in clear"), "{err}");
    let mut typed = ConfigStore::new();
    assert!(
        typed
            .execute(None, &format!("hrp authentication-key {SECRET_MASK}"))
            .is_err()
    );
    assert_eq!(
        mask_secrets("hrp authentication-key abc"),
        format!("hrp authentication-key {SECRET_MASK}")
    );
}
