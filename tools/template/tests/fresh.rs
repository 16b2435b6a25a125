//! The checked-in `template.yaml` is what `make template` writes from the source
//! declarations: a source added, changed or removed in `shared::domain::source` without
//! regenerating fails here.

#[test]
fn the_checked_in_template_is_what_make_template_writes() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let checked_in = std::fs::read_to_string(&path).expect("template.yaml");
    let generated = template::render(&checked_in).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        checked_in == generated,
        "template.yaml is stale: its per-source parts are not what shared::domain::source::ALL \
         declares; run `make template` and commit the result"
    );
}
