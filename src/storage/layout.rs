//! Checks, before anything is created, that the servers in `clickhouse.shards` are the cluster
//! the config names: each knows the cluster with as many shards and replicas, has the `{shard}`
//! and `{replica}` macros the replicated tables are named by, and the servers listed as one
//! shard share a `{shard}` while no two shards do. A server that does not answer is skipped
//! here (`migrate` decides whether its shard can do without it).

use std::collections::HashMap;

use serde::Deserialize;

use crate::cluster::Cluster;
use crate::error::Error;

#[derive(Deserialize, clickhouse::Row)]
struct Macro {
    macro_name: String,
    substitution: String,
}

/// What one server says about itself.
struct Seen {
    shard_macro: String,
    replica_macro: String,
    shape: Vec<u64>,
}

pub async fn check(cluster: &Cluster) -> Result<(), Error> {
    let Some(name) = cluster.name.as_deref() else {
        return Ok(());
    };
    let wanted: Vec<u64> = cluster
        .shards
        .iter()
        .map(|s| s.replicas.len() as u64)
        .collect();
    // The {shard} macro of each configured shard, as its first answering server has it.
    let mut shard_macros: HashMap<String, usize> = HashMap::new();
    for shard in &cluster.shards {
        let mut replica_macros: HashMap<String, &str> = HashMap::new();
        let mut this_shard: Option<String> = None;
        for server in &shard.replicas {
            let seen = match look(server.admin(), name).await {
                Ok(seen) => seen,
                Err(e) if crate::clickhouse_code::of(&e).is_none() => continue,
                Err(e) => return Err(e.into()),
            };
            let url = &server.url;
            if seen.shape != wanted {
                return Err(Error::Config(format!(
                    "{url} knows cluster {name:?} with shards of {:?} replicas; \
                     clickhouse.shards lists {wanted:?} (check remote_servers)",
                    seen.shape
                )));
            }
            if seen.shard_macro.is_empty() || seen.replica_macro.is_empty() {
                return Err(Error::Config(format!(
                    "{url} lacks the {{shard}} or {{replica}} macro (<macros> in its config)"
                )));
            }
            match &this_shard {
                None => this_shard = Some(seen.shard_macro.clone()),
                Some(m) if *m != seen.shard_macro => {
                    return Err(Error::Config(format!(
                        "{url} has {{shard}} = {:?} but the other servers of shard {} have {m:?}",
                        seen.shard_macro,
                        shard.index + 1
                    )))
                }
                Some(_) => {}
            }
            if let Some(other) = replica_macros.insert(seen.replica_macro.clone(), url) {
                return Err(Error::Config(format!(
                    "{url} and {other} both have {{replica}} = {:?}",
                    seen.replica_macro
                )));
            }
        }
        if let Some(m) = this_shard {
            if let Some(other) = shard_macros.insert(m.clone(), shard.index) {
                return Err(Error::Config(format!(
                    "shards {} and {} both have {{shard}} = {m:?}",
                    other + 1,
                    shard.index + 1
                )));
            }
        }
    }
    Ok(())
}

async fn look(admin: &clickhouse::Client, name: &str) -> Result<Seen, clickhouse::error::Error> {
    let macros: Vec<Macro> = admin
        .query("SELECT macro AS macro_name, substitution FROM system.macros")
        .fetch_all()
        .await?;
    let get = |m: &str| {
        macros
            .iter()
            .find(|x| x.macro_name == m)
            .map(|x| x.substitution.clone())
            .unwrap_or_default()
    };
    let shape: Vec<u64> = admin
        .query(
            "SELECT toUInt64(count()) AS replicas FROM system.clusters \
             WHERE cluster = ? GROUP BY shard_num ORDER BY shard_num",
        )
        .bind(name)
        .fetch_all()
        .await?;
    Ok(Seen {
        shard_macro: get("shard"),
        replica_macro: get("replica"),
        shape,
    })
}
