//! The vote chain: each block names a vote file and its SHA-256, and hashes its own fields
//! with the previous block's hash, so any edit shows.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A minute's chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Chain {
    /// The round.
    pub minute_id: String,
    /// Its blocks, first to last.
    pub chain: Vec<Block>,
}

/// One block: one vote.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Block {
    /// 1 for the first block.
    pub index: u64,
    /// When the vote was cast.
    pub timestamp: String,
    /// The previous block's hash (`None` for the first).
    pub previous_hash: Option<String>,
    /// Always `"vote"` here.
    #[serde(rename = "type")]
    pub kind: String,
    /// The voter.
    pub model: String,
    /// The ballot's file, relative to the minute's folder.
    pub vote_file: String,
    /// SHA-256 of the ballot file's bytes.
    pub vote_file_hash: String,
    /// SHA-256 of `index|timestamp|previous_hash|type|model|vote_file|vote_file_hash`.
    pub block_hash: String,
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The hash a block should carry, from its fields (a missing previous hash is written as
/// the empty string).
pub fn block_hash(block: &Block) -> String {
    let text = [
        block.index.to_string().as_str(),
        &block.timestamp,
        block.previous_hash.as_deref().unwrap_or(""),
        &block.kind,
        &block.model,
        &block.vote_file,
        &block.vote_file_hash,
    ]
    .join("|");
    sha256_hex(text.as_bytes())
}

/// What is wrong with a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Its vote file is missing.
    VoteFileMissing,
    /// Its vote file's bytes do not hash to the recorded hash.
    VoteFileHash {
        /// The hash in the block.
        recorded: String,
        /// The hash of the file now.
        actual: String,
    },
    /// Its own hash does not match its fields.
    BlockHash {
        /// The hash in the block.
        recorded: String,
        /// The hash of its fields.
        actual: String,
    },
    /// It does not point at the block before it.
    BrokenLink {
        /// The previous block's hash.
        expected: Option<String>,
        /// What it points at.
        found: Option<String>,
    },
}

/// A block that does not verify, and why (one entry per problem).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockProblem {
    /// The block's index.
    pub index: u64,
    /// Its voter.
    pub model: String,
    /// What is wrong.
    pub problem: Problem,
}

impl Chain {
    /// Every problem of every block; `file` gives a vote file's bytes by its path.
    pub fn verify(&self, file: impl Fn(&str) -> Option<Vec<u8>>) -> Vec<BlockProblem> {
        let mut problems = Vec::new();
        let mut previous: Option<&str> = None;
        for block in &self.chain {
            let mut report = |problem| {
                problems.push(BlockProblem {
                    index: block.index,
                    model: block.model.clone(),
                    problem,
                });
            };
            if block.previous_hash.as_deref() != previous {
                report(Problem::BrokenLink {
                    expected: previous.map(str::to_owned),
                    found: block.previous_hash.clone(),
                });
            }
            match file(&block.vote_file) {
                None => report(Problem::VoteFileMissing),
                Some(bytes) => {
                    let actual = sha256_hex(&bytes);
                    if actual != block.vote_file_hash {
                        report(Problem::VoteFileHash {
                            recorded: block.vote_file_hash.clone(),
                            actual,
                        });
                    }
                }
            }
            let actual = block_hash(block);
            if actual != block.block_hash {
                report(Problem::BlockHash {
                    recorded: block.block_hash.clone(),
                    actual,
                });
            }
            previous = Some(&block.block_hash);
        }
        problems
    }

    /// Appends a block for a ballot file and returns it.
    pub fn append(
        &mut self,
        model: &str,
        timestamp: &str,
        vote_file: &str,
        bytes: &[u8],
    ) -> &Block {
        let mut block = Block {
            index: self.chain.last().map_or(1, |b| b.index + 1),
            timestamp: timestamp.to_owned(),
            previous_hash: self.chain.last().map(|b| b.block_hash.clone()),
            kind: "vote".to_owned(),
            model: model.to_owned(),
            vote_file: vote_file.to_owned(),
            vote_file_hash: sha256_hex(bytes),
            block_hash: String::new(),
        };
        block.block_hash = block_hash(&block);
        self.chain.push(block);
        &self.chain[self.chain.len() - 1]
    }
}
