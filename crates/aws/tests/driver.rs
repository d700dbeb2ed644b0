//! The stack driver's state machine against scripted CloudFormation answers: what no emulator
//! can show (rollbacks, long in-progress states, failure events, pagination).
//! One module per area (`tests/driver/`).

mod scripted;

mod driver {
    mod change_sets;
    mod delete;
    mod display_and_defaults;
    mod ensure;
    mod fixtures;
    mod tenancy;
}
