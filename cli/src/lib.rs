//! The `ocr` command's parts: the local stack (`ocr dev`) and a client of the API.

pub mod client;
pub mod dev;
pub mod functions;
pub mod gateway;
pub mod invocations;
pub mod invoke;
pub mod moto;
pub mod provision;
pub mod pumps;
pub mod state;
pub mod token;
pub mod web;
