//! The embedded store on a real disk: crashes, damage, rebuilds and races.

mod common;
mod concurrency;
mod conformance;
mod crash;
mod damage;
mod index;
mod layout;
mod segments;
