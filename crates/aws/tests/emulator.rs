//! Integration tests against the local AWS emulator, one module per area (`tests/emulator/`);
//! see common/mod.rs for how the emulator is chosen and how tests are isolated.

mod common;

mod emulator {
    mod decommission;
    mod previews;
    mod secrets;
    mod stacks;
    mod support;
    mod updates;
}
