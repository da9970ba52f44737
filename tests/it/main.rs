//! etcdrill's integration tests, in one binary (one link step instead of one per area). Each module
//! is an area under test and names it in the test's path, e.g. `exec::resume_...`; run one area
//! with `cargo nextest run -p etcdrill --test it -E 'test(/^exec::/)'`.
//!
//! Tests that need the root-only test bed (`tests/testbed`) skip without root, except on CI or
//! with `ETCDRILL_TESTBED_REQUIRED=1`, where they fail instead; each module's doc says what it
//! needs. `support` holds what the modules share: the builder that runs the `etcdrill` binary, the
//! repository's root, and the test bed helpers.

mod support;

mod backup;
mod cli;
mod corpus;
mod crash_points;
mod deploy;
mod diagnose;
mod drills;
mod exec;
mod hardening;
mod local_run;
mod runbooks_day2;
mod runbooks_live;
mod stock_runbooks;
mod terminal;
