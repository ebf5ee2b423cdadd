use std::time::Instant;

use anyhow::{anyhow, bail};

use ramscope::exporter::{Exporter, ExporterOptions, Targets};
use ramscope::proc::ProcFs;

use crate::cli::ServeArgs;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    if !args.listen.ip().is_loopback() && !args.allow_remote {
        bail!(
            "refusing to listen on {}: not a loopback address (metrics name processes and command lines); pass --allow-remote to serve beyond this machine",
            args.listen
        );
    }
    let targets = if args.auto {
        Targets::Auto
    } else if args.pids.is_empty() {
        bail!("nothing to export: give PIDs or --auto");
    } else {
        Targets::Pids(args.pids.clone())
    };
    let fs = ProcFs::new(&args.proc_root);
    if let Targets::Pids(pids) = &targets {
        if let Some(p) = pids.iter().find(|&&p| !fs.exists(p)) {
            bail!("no process with PID {p}");
        }
    }
    let mut exporter = Exporter::new(
        fs,
        ExporterOptions {
            targets,
            min_interval: args.min_interval,
            max_processes: args.max_processes,
        },
    );
    let server = tiny_http::Server::http(args.listen)
        .map_err(|e| anyhow!("cannot listen on {}: {e}", args.listen))?;
    eprintln!(
        "ramscope: serving metrics at http://{}/metrics",
        server.server_addr()
    );
    // One request at a time: a scrape storm queues up instead of reading /proc in parallel.
    for request in server.incoming_requests() {
        let (status, body, content_type) = match (request.method(), request.url()) {
            (tiny_http::Method::Get, "/metrics") => {
                (200, exporter.scrape(Instant::now()), CONTENT_TYPE)
            }
            (tiny_http::Method::Get, "/") => (
                200,
                "<html><body><a href=\"/metrics\">/metrics</a></body></html>\n".to_string(),
                "text/html; charset=utf-8",
            ),
            (tiny_http::Method::Get, _) => (404, "not found\n".into(), "text/plain"),
            _ => (405, "only GET\n".into(), "text/plain"),
        };
        let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes())
            .map_err(|()| anyhow!("bad content type"))?;
        let response = tiny_http::Response::from_string(body)
            .with_status_code(status)
            .with_header(header);
        // A client that hung up is its own problem, not the exporter's.
        let _ = request.respond(response);
    }
    Ok(())
}
