//! The embedded store on a real disk: crashes, damage, rebuilds and races.

mod common;
mod concurrency;
mod crash;
mod damage;
mod figures;
mod index;
mod layout;
mod segments;
