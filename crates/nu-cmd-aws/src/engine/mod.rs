//! The request engine on the shell side: the flags and configuration every bulk command shares
//! and the stream of their results ([`bulk`]), and `aws engine`, what the engine has learned and
//! what its last jobs did ([`engine_`]).

pub mod bulk;
mod engine_;

pub use engine_::AwsEngine;
