//! Benchmark set-up: creates a config log for the load test (`--init-log`) and/or stores
//! `--reports N` synthetic valid reports of one week directly in the database, in batches,
//! for timing `clearcount-server aggregate`. Used by `server/bench/run.sh`.

use std::path::PathBuf;
use std::time::Instant;

use chrono::NaiveDate;
use clearcount_config_log::note::Signer;
use clearcount_config_log::store::LogStore;
use clearcount_server::configs::ConfigLog;
use clearcount_server::report::parse;
use clearcount_server::storage::Db;
use clearcount_server::validate::validate;
use rand::Rng;

/// The benchmark config: the DESIGN.md example with every report sampled.
pub const CONFIG: &str = include_str!("../bench/config.toml");

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let log_dir = PathBuf::from(arg(&args, "--log").ok_or("--log DIR is required")?);
    if args.iter().any(|a| a == "--init-log") {
        let signer = Signer::generate("bench.clearcount.example/config")?;
        let mut log = LogStore::init(&log_dir, &signer)?;
        log.append_config(
            CONFIG.as_bytes(),
            &signer,
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        )?;
        eprintln!("log created in {}", log_dir.display());
    }
    let n: u64 = arg(&args, "--reports").map_or(Ok(0), |s| s.parse())?;
    if n == 0 {
        return Ok(());
    }
    let data = PathBuf::from(arg(&args, "--data").ok_or("--data DIR is required")?);
    let week = arg(&args, "--week").unwrap_or_else(|| "2026-11-16".into());
    let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
    let log = ConfigLog::open(&log_dir)?;
    let cfg = log.get(0)?.ok_or("the log has no config")?;
    let db = Db::connect(arg(&args, "--database").as_deref(), &data).await?;
    let buckets = ["0", "1", "10", "100", "1000"];
    let engines = ["default", "pcre2", "other", "none"];
    let oses = ["linux", "macos", "windows"];
    let versions = ["14.0.0", "14.1.0", "14.1.1", "devel"];
    let mut rng = rand::rng();
    let start = Instant::now();
    let mut done = 0u64;
    while done < n {
        let batch = (n - done).min(5000);
        let mut accepted = Vec::with_capacity(batch as usize);
        for _ in 0..batch {
            let body = format!(
                r#"{{"format":1,"week":"{week}","config":{{"origin":"bench.clearcount.example/config","index":0}},"x":{},"programs":[{{"name":"ripgrep","version":"{}","os":"{}","arch":"x86_64","counters":{{"invocations":"{}","engine":"{}"}}}}]}}"#,
                rng.random::<f64>(),
                versions[rng.random_range(0..4)],
                oses[rng.random_range(0..3)],
                buckets[rng.random_range(0..5)],
                engines[rng.random_range(0..4)],
            );
            let report = parse(body.as_bytes())?;
            accepted.push(validate(&report, &log.origin(), 1, Some(&cfg), today)?);
        }
        let items: Vec<_> = accepted.iter().map(|a| (a, today)).collect();
        db.insert_batch(&items).await?;
        done += batch;
    }
    eprintln!(
        "stored {n} reports in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    db.close().await;
    Ok(())
}
