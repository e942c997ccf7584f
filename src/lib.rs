//! telos: intent extraction and workflow drift detection for AI-agent
//! authorization.
#![doc = include_str!("../README.md")]

pub mod catalog;
pub mod extraction;
pub mod intent;
