//! Backups described as values: where snapshot copies go ([`destination`]) and which copies a
//! retention policy keeps ([`retention`]). Shipping, listing and pruning are the etcdrill crate's.

pub mod destination;
pub mod retention;
