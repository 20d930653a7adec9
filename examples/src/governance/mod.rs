//! The governance flows hive-resilience began with (CMMV-Hive): AI models vote on
//! proposals, and a round must reach quorum when some of them fail.
//!
//! * [`Ballot`] and [`Minute`]: the real data of minute 0004 (`examples/data/`).
//! * [`chain`]: the vote chain (SHA-256 block hashes), verified and extended.
//! * [`round`]: a vote round, each voter through its own stack, under one deadline, with
//!   identity checks; the quorum and the score of each proposal.
//! * [`review`]: a proposal review by a primary reviewer with fallback to backups.

pub mod chain;
pub mod review;
pub mod round;

use std::{
    collections::BTreeMap,
    fs, io,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// One model's ballot: a weight from 1 to 10 for each proposal it scored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ballot {
    /// The round.
    pub minute_id: String,
    /// The model that voted, as it names itself.
    pub model: String,
    /// When it voted.
    pub timestamp: String,
    /// Its weights.
    pub weights: Vec<Weight>,
    /// Fields this version does not know, kept as they were.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// A weight given to one proposal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Weight {
    /// The proposal.
    pub proposal_id: String,
    /// 1 (against) to 10 (strongly for).
    pub weight: u8,
    /// Why.
    #[serde(default)]
    pub comment: String,
    /// Fields this version does not know, kept as they were.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// A proposal of the round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// Its number.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Who wrote it.
    pub author: String,
    /// Its category.
    pub category: String,
}

/// Why minute data could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file is not what it should be.
    #[error("{path} is malformed: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
}

/// The data of one minute: proposals, ballots (file name → ballot and raw bytes) and chain.
#[derive(Clone, Debug)]
pub struct Minute {
    /// Its folder.
    pub dir: PathBuf,
    /// Its proposals.
    pub proposals: Vec<Proposal>,
    /// Its ballots by vote file (`votes/<model>.json`), with the file's bytes.
    pub ballots: BTreeMap<String, (Ballot, Vec<u8>)>,
    /// Its chain as published.
    pub chain: chain::Chain,
}

/// The folder of minute 0004, shipped with the examples.
pub fn minute_0004_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/cmmv-hive-minutes-0004")
}

fn read(path: &Path) -> Result<Vec<u8>, DataError> {
    fs::read(path).map_err(|source| DataError::Io {
        path: path.to_owned(),
        source,
    })
}

fn parse<T: for<'de> Deserialize<'de>>(path: &Path, bytes: &[u8]) -> Result<T, DataError> {
    serde_json::from_slice(bytes).map_err(|source| DataError::Json {
        path: path.to_owned(),
        source,
    })
}

impl Minute {
    /// Reads a minute's folder.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, DataError> {
        let dir = dir.as_ref().to_owned();
        let proposals_path = dir.join("proposals.json");
        let proposals = parse(&proposals_path, &read(&proposals_path)?)?;
        let chain_path = dir.join("voting_chain.json");
        let chain = parse(&chain_path, &read(&chain_path)?)?;
        let mut ballots = BTreeMap::new();
        let votes = dir.join("votes");
        let entries = fs::read_dir(&votes).map_err(|source| DataError::Io {
            path: votes.clone(),
            source,
        })?;
        for entry in entries {
            let path = entry
                .map_err(|source| DataError::Io {
                    path: votes.clone(),
                    source,
                })?
                .path();
            if path.extension().is_some_and(|e| e == "json") {
                let bytes = read(&path)?;
                let ballot = parse(&path, &bytes)?;
                let name = path
                    .file_name()
                    .map(|n| format!("votes/{}", n.to_string_lossy()))
                    .unwrap_or_default();
                ballots.insert(name, (ballot, bytes));
            }
        }
        Ok(Self {
            dir,
            proposals,
            ballots,
            chain,
        })
    }

    /// The ballot a model cast, found by its vote file's model name.
    pub fn ballot_of(&self, model: &str) -> Option<&Ballot> {
        self.ballots
            .values()
            .map(|(ballot, _)| ballot)
            .find(|b| b.model == model)
    }
}
