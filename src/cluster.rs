//! The ClickHouse servers tally talks to: one server, or a cluster of shards of replicas
//! (`clickhouse.cluster`), and which server takes a request when another does not answer.
//!
//! A single server is a cluster of one shard with one replica and plain tables, so every caller
//! has one shape to deal with. In cluster mode:
//! - each shard's tables are `ReplicatedMergeTree`s and hold that shard's visitors only (raw
//!   events are sharded by visitor hash through the `Distributed` table `events_all`), so visits,
//!   rollups and retention run shard by shard on the shard's own tables, and a report is summed
//!   from every shard's answer;
//! - the salts are replicated to every server, so all collectors hash alike;
//! - a collector sends a request to one replica of a shard, and moves to the next when a
//!   replica fails (network error, time-out, read-only replica): the failed one is left alone
//!   for [`RETRY_AFTER`] and then tried again.
//!
//! Within a shard, every collector prefers the replicas in the configured order: reports and
//! jobs read where the jobs wrote, so they do not see a replica that replication has not caught
//! up yet (replication between tables is not ordered: a visit slice's marker could reach a
//! replica before its visits). Inserts of raw events, which only the visit job reads hours
//! later, start at a random server of the cluster, so that collectors spread that work.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clickhouse::{Client, Compression};
use secrecy::ExposeSecret;

use crate::config::ClickHouseConfig;
use crate::retry::{classify, Failure};

/// How long a replica that failed is passed over before it is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The name of the `Distributed` table over the shards' raw events (cluster mode): inserts go
/// through it (it shards rows by visitor) and so do reads that need every shard's events.
pub const EVENTS_ALL: &str = "events_all";

/// How long a server has to answer [`Cluster::from_every_server`].
pub const EVERY_SERVER_TIMEOUT: Duration = Duration::from_secs(5);

/// How often every server is asked whether it answers (cluster mode), so that a replica that
/// went away is passed over before a job or a report runs into it, and one that came back is
/// used again.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// One ClickHouse server.
pub struct Server {
    /// The HTTP interface as configured (no credentials), for logs and the privacy report.
    pub url: String,
    /// Bound to the configured database.
    client: Client,
    /// Not bound to a database (`CREATE DATABASE`).
    admin: Client,
    /// Set when a request failed for a reason another replica may not have.
    down_since: Mutex<Option<Instant>>,
}

impl Server {
    fn new(url: &str, config: &ClickHouseConfig, cluster: bool) -> Server {
        let admin = server_client(url, config);
        let mut client = admin.clone().with_database(&config.database);
        if cluster {
            // An insert into `events_all` returns once every shard has the rows (on one
            // replica), not when they are queued on this server's disk: an acknowledged batch
            // is stored, a refused one stays with the collector (its spool).
            client = client.with_setting("insert_distributed_sync", "1");
        }
        Server {
            url: url.to_string(),
            client,
            admin,
            down_since: Mutex::new(None),
        }
    }

    /// The client for this server, bound to the database.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The client for this server, not bound to a database.
    pub fn admin(&self) -> &Client {
        &self.admin
    }

    /// Whether the last request to this server (or the last probe) was answered.
    pub fn is_up(&self) -> bool {
        self.down_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }

    /// Asks the server whether it answers, and remembers the answer.
    pub async fn probe(&self) -> bool {
        let ping = self.admin.query("SELECT 1").fetch_one::<u8>();
        let up = matches!(tokio::time::timeout(PROBE_INTERVAL, ping).await, Ok(Ok(1)));
        // A server that keeps failing stays passed over from its first failure on.
        if up || self.is_up() {
            self.mark(up);
        }
        up
    }

    fn is_passed_over(&self, now: Instant) -> bool {
        let since = *self.down_since.lock().unwrap_or_else(|e| e.into_inner());
        since.is_some_and(|t| now.duration_since(t) < RETRY_AFTER)
    }

    fn mark(&self, up: bool) {
        let mut since = self.down_since.lock().unwrap_or_else(|e| e.into_inner());
        *since = if up { None } else { Some(Instant::now()) };
    }
}

/// A client not bound to a database (`CREATE DATABASE`, `system` tables).
pub fn server_client(url: &str, config: &ClickHouseConfig) -> Client {
    let mut c = Client::default()
        .with_url(url)
        .with_user(&config.user)
        // ClickHouse 18.16 lacks the `RowBinaryWithNamesAndTypes` format validation relies
        // on; the row types mirror the schema instead.
        .with_validation(false)
        .with_compression(compression_for(url, config.compression));
    let password = config.password.expose_secret();
    if !password.is_empty() {
        c = c.with_password(password);
    }
    c
}

/// As `clickhouse.compression` says; `auto` is LZ4 for inserts and answers, except to a server
/// on this machine: over loopback the bytes cost nothing to carry, and compressing them cost
/// the collector about 2 % of its CPU per beacon at full load (and ClickHouse as much again to
/// decompress).
fn compression_for(url: &str, setting: crate::config::Compression) -> Compression {
    use crate::config::Compression as Setting;
    match setting {
        Setting::Lz4 => return Compression::Lz4,
        Setting::None => return Compression::None,
        Setting::Auto => {}
    }
    let loopback = url::Url::parse(url).ok().is_some_and(|u| match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    });
    if loopback {
        Compression::None
    } else {
        Compression::Lz4
    }
}

/// The replicas of one shard.
pub struct Shard {
    /// 0-based, in the order of `clickhouse.shards` (and of the cluster's `remote_servers`).
    pub index: usize,
    pub replicas: Vec<Server>,
    /// The replica tried first.
    preferred: AtomicUsize,
    /// Whether the replica that answered becomes the one tried first (else the first one stays
    /// first, and is used again as soon as it answers again).
    sticky: bool,
}

/// Whether an error means "this server cannot answer now" (another replica may), as opposed
/// to an answer no replica would change (bad SQL, bad data, a query too large).
pub trait Failover {
    fn try_elsewhere(&self) -> bool;
}

impl Failover for clickhouse::error::Error {
    fn try_elsewhere(&self) -> bool {
        classify(self) == Failure::Retriable
            && !matches!(
                crate::clickhouse_code::of(self),
                Some(crate::clickhouse_code::TIMEOUT_EXCEEDED)
                    | Some(crate::clickhouse_code::MEMORY_LIMIT_EXCEEDED)
            )
    }
}

impl Failover for crate::error::Error {
    fn try_elsewhere(&self) -> bool {
        match self {
            crate::error::Error::ClickHouse(e) => e.try_elsewhere(),
            _ => false,
        }
    }
}

impl Failover for crate::error::StatsError {
    fn try_elsewhere(&self) -> bool {
        *self == crate::error::StatsError::Unavailable
    }
}

impl Shard {
    /// The client of the replica to use now: the preferred one unless it failed lately.
    pub fn client(&self) -> &Client {
        self.replicas[self.pick(Instant::now())].client()
    }

    fn pick(&self, now: Instant) -> usize {
        let n = self.replicas.len();
        let first = self.preferred.load(Ordering::Relaxed) % n;
        (0..n)
            .map(|i| (first + i) % n)
            .find(|&i| !self.replicas[i].is_passed_over(now))
            .unwrap_or(first)
    }

    /// Runs `f` on a replica of this shard; when it fails in a way another replica may not,
    /// on the next, until one answers or every replica was tried. The error returned is the
    /// last replica's.
    pub async fn run<T, E, F, Fut>(&self, mut f: F) -> Result<T, E>
    where
        E: Failover,
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let n = self.replicas.len();
        let first = self.pick(Instant::now());
        let mut last = None;
        for i in (0..n).map(|i| (first + i) % n) {
            let replica = &self.replicas[i];
            match f(replica.client().clone()).await {
                Ok(v) => {
                    replica.mark(true);
                    if self.sticky {
                        self.preferred.store(i, Ordering::Relaxed);
                    }
                    return Ok(v);
                }
                Err(e) if e.try_elsewhere() => {
                    if n > 1 {
                        tracing::warn!(server = %replica.url, shard = self.index + 1, "replica did not answer; trying the next");
                    }
                    replica.mark(false);
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("a shard has at least one replica"))
    }

    /// Runs `f` once, on the replica [`Shard::run`] would try first; a failure another replica
    /// may not have marks it, so that the next call goes elsewhere, but is not retried there
    /// now. For a write whose outcome a failure leaves unknown and that nothing would recognise
    /// if it were repeated on another server (aggregate-only counts).
    pub async fn run_once<T, E, F, Fut>(&self, f: F) -> Result<T, E>
    where
        E: Failover,
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let i = self.pick(Instant::now());
        let replica = &self.replicas[i];
        let result = f(replica.client().clone()).await;
        match &result {
            Ok(_) => replica.mark(true),
            Err(e) if e.try_elsewhere() => replica.mark(false),
            Err(_) => {}
        }
        result
    }
}

/// The servers, shard by shard.
pub struct Cluster {
    /// The cluster's name; `None`: one server with plain tables.
    pub name: Option<String>,
    pub database: String,
    /// ZooKeeper folder of the replicated tables (cluster mode).
    pub zookeeper_path: String,
    pub shards: Vec<Shard>,
    /// Every server in one shard-like list, for requests any server can answer (inserts
    /// through `events_all`, salts, reads of `events_all`).
    everywhere: Shard,
}

impl Cluster {
    pub fn new(config: &ClickHouseConfig) -> Cluster {
        let cluster = config.cluster.is_some();
        let urls = config.shards();
        let shard = |index: usize, urls: &[String], preferred: usize| Shard {
            index,
            replicas: urls
                .iter()
                .map(|u| Server::new(u, config, cluster))
                .collect(),
            preferred: AtomicUsize::new(preferred % urls.len().max(1)),
            sticky: false,
        };
        let shards: Vec<Shard> = urls
            .iter()
            .enumerate()
            .map(|(i, u)| shard(i, u, 0))
            .collect();
        let all: Vec<String> = urls.concat();
        // Where this collector's inserts start, fixed for its lifetime.
        let offset = usize::try_from(rand::random::<u32>()).unwrap_or(0);
        Cluster {
            name: config.cluster.as_ref().map(|c| c.name.clone()),
            database: config.database.clone(),
            zookeeper_path: config
                .cluster
                .as_ref()
                .map(|c| c.zookeeper_path.clone())
                .unwrap_or_default(),
            shards,
            everywhere: Shard {
                sticky: true,
                ..shard(0, &all, offset)
            },
        }
    }

    pub fn is_cluster(&self) -> bool {
        self.name.is_some()
    }

    /// Every server, shard by shard.
    pub fn servers(&self) -> impl Iterator<Item = &Server> {
        self.shards.iter().flat_map(|s| s.replicas.iter())
    }

    /// Runs `f` on any server (the preferred one first, then the others).
    pub async fn run_anywhere<T, E, F, Fut>(&self, f: F) -> Result<T, E>
    where
        E: Failover,
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.everywhere.run(f).await
    }

    /// Runs `f` on every server at once and joins the rows of those that answered; fails only
    /// when none did (with the last error). For the tables every server holds whole (salts,
    /// dashboard sessions), so that a row is seen once its insert returned, whichever server
    /// took it and however far replication is behind.
    ///
    /// Servers marked down are left out (all are asked when all are), and each has
    /// [`EVERY_SERVER_TIMEOUT`] to answer: a server that stopped answering without refusing
    /// (paused, cut off) must not hold up the caller, a dashboard request among them.
    pub async fn from_every_server<T, F, Fut>(
        &self,
        f: F,
    ) -> Result<Vec<T>, clickhouse::error::Error>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<Vec<T>, clickhouse::error::Error>>,
    {
        let now = Instant::now();
        let up: Vec<&Server> = self.servers().filter(|s| !s.is_passed_over(now)).collect();
        let asked = if up.is_empty() {
            self.servers().collect()
        } else {
            up
        };
        let answers = futures_util::future::join_all(asked.iter().map(|s| async {
            let answer = tokio::time::timeout(EVERY_SERVER_TIMEOUT, f(s.client().clone()))
                .await
                .unwrap_or(Err(clickhouse::error::Error::TimedOut));
            if answer.as_ref().is_err_and(|e| e.try_elsewhere()) {
                s.mark(false);
            }
            answer
        }))
        .await;
        let mut rows = Vec::new();
        let mut last = None;
        let mut answered = false;
        for answer in answers {
            match answer {
                Ok(r) => {
                    answered = true;
                    rows.extend(r);
                }
                Err(e) => last = Some(e),
            }
        }
        match (answered, last) {
            (false, Some(e)) => Err(e),
            _ => Ok(rows),
        }
    }

    /// Runs `f` once on any server (see [`Shard::run_once`]).
    pub async fn run_once_anywhere<T, E, F, Fut>(&self, f: F) -> Result<T, E>
    where
        E: Failover,
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.everywhere.run_once(f).await
    }

    /// One handle per shard, for the jobs that run shard by shard (visits, rollups, retention).
    pub fn shard_refs(self: &Arc<Self>) -> Vec<ShardRef> {
        (0..self.shards.len())
            .map(|index| ShardRef {
                cluster: self.clone(),
                index,
            })
            .collect()
    }

    /// Probes every server every [`PROBE_INTERVAL`], for ever (cluster mode; one server needs
    /// no choosing).
    pub async fn watch(self: Arc<Self>) {
        if !self.is_cluster() {
            return;
        }
        loop {
            futures_util::future::join_all(self.servers().map(Server::probe)).await;
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    }

    /// The table raw events are inserted into, and read from when every shard's are needed.
    pub fn events_everywhere(&self) -> &'static str {
        if self.is_cluster() {
            EVENTS_ALL
        } else {
            "events"
        }
    }
}

/// One shard of a shared [`Cluster`], for a job that works on that shard's tables.
#[derive(Clone)]
pub struct ShardRef {
    cluster: Arc<Cluster>,
    index: usize,
}

impl ShardRef {
    pub fn shard(&self) -> &Shard {
        &self.cluster.shards[self.index]
    }

    /// The client of the replica to use now (see [`Shard::client`]).
    pub fn client(&self) -> &Client {
        self.shard().client()
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// For log lines: `shard N` (1-based) in cluster mode, empty for one server.
    pub fn label(&self) -> String {
        if self.cluster.is_cluster() {
            format!("shard {}", self.index + 1)
        } else {
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_on_this_machine_is_sent_uncompressed_and_others_lz4_unless_the_config_says() {
        use crate::config::Compression as Setting;
        for url in [
            "http://127.0.0.1:8123",
            "http://127.0.0.2:8123/",
            "http://[::1]:8123",
            "http://LOCALHOST:8123",
        ] {
            assert!(
                matches!(compression_for(url, Setting::Auto), Compression::None),
                "{url}"
            );
            assert!(matches!(
                compression_for(url, Setting::Lz4),
                Compression::Lz4
            ));
        }
        for url in [
            "http://10.0.0.5:8123",
            "https://clickhouse.example:8443",
            "http://[2001:db8::1]:8123",
            "http://localhost.example:8123",
            "not a url",
        ] {
            assert!(
                matches!(compression_for(url, Setting::Auto), Compression::Lz4),
                "{url}"
            );
            assert!(matches!(
                compression_for(url, Setting::None),
                Compression::None
            ));
        }
    }

    fn config(shards: &[&[&str]]) -> ClickHouseConfig {
        let text = format!(
            "[clickhouse]\ncluster = \"c\"\nshards = [{}]\n[[sites]]\ndomain = \"a.example\"\n",
            shards
                .iter()
                .map(|s| format!(
                    "[{}]",
                    s.iter()
                        .map(|u| format!("\"{u}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        crate::Config::parse(&text).unwrap().clickhouse
    }

    fn down() -> clickhouse::error::Error {
        clickhouse::error::Error::BadResponse(
            "Code: 210, e.displayText() = Connection refused".into(),
        )
    }

    #[tokio::test]
    async fn a_failing_replica_is_passed_over_and_the_next_one_answers() {
        let c = Cluster::new(&config(&[&["http://a:1", "http://b:1"], &["http://c:1"]]));
        assert!(c.is_cluster());
        assert_eq!(c.events_everywhere(), EVENTS_ALL);
        let shard = &c.shards[0];
        let first = shard.pick(Instant::now());
        let mut tried = Vec::new();
        let answer: Result<&str, clickhouse::error::Error> = shard
            .run(|_client| {
                let i = tried.len();
                tried.push(i);
                async move {
                    if i == 0 {
                        Err(down())
                    } else {
                        Ok("answer")
                    }
                }
            })
            .await;
        assert_eq!(answer.unwrap(), "answer");
        assert_eq!(tried.len(), 2, "both replicas tried");
        // The one that failed is passed over now, for the other.
        assert_eq!(
            first, 0,
            "a shard's replicas are tried in the configured order"
        );
        assert!(shard.replicas[first].is_passed_over(Instant::now()));
        assert_eq!(shard.pick(Instant::now()), 1);
        // And tried again once its time is up.
        assert!(!shard.replicas[first].is_passed_over(Instant::now() + RETRY_AFTER));
    }

    #[tokio::test]
    async fn errors_no_replica_can_change_are_returned_at_once() {
        let c = Cluster::new(&config(&[&["http://a:1", "http://b:1"]]));
        let mut calls = 0;
        let answer: Result<(), clickhouse::error::Error> = c.shards[0]
            .run(|_| {
                calls += 1;
                async {
                    Err(clickhouse::error::Error::BadResponse(
                        "Code: 159, e.displayText() = Timeout exceeded".into(),
                    ))
                }
            })
            .await;
        assert!(answer.is_err());
        assert_eq!(
            calls, 1,
            "a query too large for one replica is too large for all"
        );
        let mut calls = 0;
        let answer: Result<(), clickhouse::error::Error> = c.shards[0]
            .run(|_| {
                calls += 1;
                async { Err(down()) }
            })
            .await;
        assert!(answer.is_err());
        assert_eq!(calls, 2, "every replica tried once");
    }

    #[test]
    fn one_server_is_one_shard_of_one_replica_with_plain_tables() {
        let config = crate::Config::parse("[[sites]]\ndomain = \"a.example\"\n")
            .unwrap()
            .clickhouse;
        let c = Cluster::new(&config);
        assert!(!c.is_cluster());
        assert_eq!(c.shards.len(), 1);
        assert_eq!(c.shards[0].replicas.len(), 1);
        assert_eq!(c.shards[0].replicas[0].url, "http://127.0.0.1:8123");
        assert_eq!(c.events_everywhere(), "events");
    }
}
