//! The example stacks in `stacks/` compile against the public API and round-trip through JSON.

#[path = "../../stacks/closet.rs"]
mod closet;

use infra_core::validate::check;
use infra_core::Stack;

#[test]
fn closet_round_trips_through_json() {
    let stack = closet::stack();
    assert_eq!(stack.resources.len(), 28);
    let json = stack.to_json();
    assert_eq!(Stack::from_json(&json).unwrap(), stack);
}

#[path = "../../stacks/single.rs"]
mod single;

#[test]
fn single_round_trips_through_json() {
    let stack = single::stack();
    assert_eq!(stack.name, "honeyflow");
    assert_eq!(stack.resources.len(), 10);
    let json = stack.to_json();
    assert_eq!(Stack::from_json(&json).unwrap(), stack);
}

#[test]
fn closet_has_no_errors_and_no_lints() {
    let report = check(&closet::stack());
    assert!(report.diagnostics.is_empty(), "{}", report.render());
}

#[test]
fn single_has_no_errors_and_no_lints() {
    let report = check(&single::stack());
    assert!(report.diagnostics.is_empty(), "{}", report.render());
}
