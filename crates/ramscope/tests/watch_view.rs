//! `watch`'s live view on a pseudo-terminal (`script`), as an operator's shell shows it:
//! the alternate screen and the cursor given back however watch ends, frames that fit the
//! terminal and overwrite each other in place, columns that stay put, categories named.
//! And the host a recording was made on, in its header and its SVG caption.

mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::*;

const ENTER: &str = "\x1b[?1049h";
const LEAVE: &str = "\x1b[?1049l";
const HIDE_CURSOR: &str = "\x1b[?25l";
const SHOW_CURSOR: &str = "\x1b[?25h";
const HOME: &str = "\x1b[H";
const ROWS: usize = 30;

/// A Python process with 40 MiB of heap it wrote to, so its smaps has a category to show.
fn target() -> Guard {
    python("import time; b = b'\\x01' * (40 << 20); time.sleep(60)")
}

/// `script`'s command line: a pseudo-terminal of `cols`×30 running `inner`.
fn on_terminal(cols: usize, inner: &str) -> Command {
    let mut cmd = Command::new("script");
    cmd.args([
        "-qfc",
        &format!("stty cols {cols} rows {ROWS}; exec {inner}"),
        "/dev/null",
    ])
    .env("TERM", "xterm-256color")
    .env_remove("COLUMNS")
    .env_remove("LINES");
    cmd
}

/// `s` without escape sequences: CSI (`ESC [ … final`), OSC (`ESC ] … BEL`) and two-byte ones.
fn strip(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                for c in chars.by_ref() {
                    if ('\x40'..='\x7e').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                for c in chars.by_ref() {
                    if c == '\x07' {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The frames drawn before the view gave the screen back: the text after each cursor-home,
/// as lines without escape sequences (the terminal's CR LF and the trailing empty line cut).
fn frames(out: &str) -> Vec<Vec<String>> {
    let end = out.find(LEAVE).unwrap_or(out.len());
    out[..end]
        .split(HOME)
        .skip(1)
        .map(|f| {
            let mut lines: Vec<String> = strip(f)
                .split('\n')
                .map(|l| l.trim_end_matches('\r').to_string())
                .collect();
            while lines.last().is_some_and(|l| l.is_empty()) {
                lines.pop();
            }
            lines
        })
        .collect()
}

/// The screen was taken and given back in order, and the summary printed after.
fn assert_screen_restored(out: &str) {
    let at = |what: &str| {
        out.find(what)
            .unwrap_or_else(|| panic!("{what:?} missing from {out:?}"))
    };
    assert!(
        at(ENTER) < at(HIDE_CURSOR) && at(HIDE_CURSOR) < at(HOME),
        "{out:?}"
    );
    let (leave, show) = (out.rfind(LEAVE).unwrap(), out.rfind(SHOW_CURSOR).unwrap());
    assert!(out.rfind(HOME).unwrap() < show && show < leave, "{out:?}");
    assert!(
        out[leave..].contains("Peaks"),
        "no summary after the view: {out:?}"
    );
    assert!(
        !out.contains("\x1b[2J"),
        "a frame cleared the whole screen: {out:?}"
    );
}

fn assert_frames_fit(frames: &[Vec<String>], cols: usize) {
    assert!(frames.len() >= 10, "{} frames", frames.len());
    let layout = |f: &Vec<String>| {
        let i = f
            .iter()
            .position(|l| l.starts_with("PID"))
            .unwrap_or_else(|| panic!("no table header in {f:#?}"));
        (f[i].clone(), f.get(i + 1).cloned())
    };
    let first = layout(&frames[0]);
    for f in frames {
        assert!(f.len() <= ROWS, "{} lines on {ROWS} rows: {f:#?}", f.len());
        for l in f {
            let w = l.chars().count();
            assert!(w <= cols, "{w} columns on {cols}: {l:?}");
        }
        assert_eq!(layout(f), first, "the columns moved at {cols} columns");
    }
    // The heap the target wrote, with its size: `heap 40.2 MiB`.
    let named = frames.iter().flatten().any(|l| {
        l.match_indices("heap ")
            .any(|(i, _)| l[i + 5..].starts_with(|c: char| c.is_ascii_digit()))
    });
    assert!(named, "no category in {:#?}", frames.last());
}

#[test]
fn the_live_view_fits_80_and_100_columns_and_gives_the_screen_back() {
    let target = target();
    let dir = tempfile::tempdir().unwrap();
    for cols in [80, 100] {
        let inner = format!(
            "{} watch --duration 3s --interval 100ms --out {} {}",
            env!("CARGO_BIN_EXE_ramscope"),
            dir.path().join(format!("w{cols}.jsonl")).display(),
            target.pid()
        );
        let (ok, out, err) = run_bounded(on_terminal(cols, &inner), Duration::from_secs(60));
        assert!(ok, "{err}\n{out:?}");
        assert_screen_restored(&out);
        assert_frames_fit(&frames(&out), cols);
    }
}

#[test]
fn ctrl_c_gives_the_screen_back_before_the_summary() {
    let target = target();
    let dir = tempfile::tempdir().unwrap();
    let inner = format!(
        "{} watch --interval 100ms --out {} {}",
        env!("CARGO_BIN_EXE_ramscope"),
        dir.path().join("w.jsonl").display(),
        target.pid()
    );
    let mut child = on_terminal(100, &inner)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("script (util-linux) is needed by this test");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            if tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    let mut sent = false;
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(chunk) => out.extend(chunk),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("watch did not stop: {:?}", String::from_utf8_lossy(&out));
            }
        }
        // Three frames: the handler is in place. ^C typed at the terminal: its line
        // discipline sends SIGINT to watch.
        if !sent && String::from_utf8_lossy(&out).matches(HOME).count() >= 3 {
            stdin.write_all(b"\x03").expect("typing ^C");
            stdin.flush().expect("typing ^C");
            sent = true;
        }
    }
    let status = child.wait().expect("script");
    let out = String::from_utf8_lossy(&out).into_owned();
    assert!(sent && status.success(), "{status}: {out:?}");
    assert_screen_restored(&out);
    let end = out.rfind(LEAVE).unwrap();
    assert!(out[end..].contains("stopped by an interrupt"), "{out:?}");
}

#[test]
fn the_recording_names_its_host_and_the_svg_caption_shows_it() {
    let target = target();
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("w.jsonl");
    let mut watch = ramscope();
    watch
        .args([
            "watch",
            "--no-live",
            "--duration",
            "1s",
            "--interval",
            "200ms",
        ])
        .arg("--out")
        .arg(&rec)
        .arg(target.pid().to_string());
    let (ok, _, err) = run_bounded(watch, Duration::from_secs(30));
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&rec).unwrap();
    let header: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(header["host"], host.trim(), "{header}");

    let svg = dir.path().join("w.svg");
    let mut report = ramscope();
    report.arg("report").arg(&rec).arg("--svg").arg(&svg);
    let (ok, _, err) = run_bounded(report, Duration::from_secs(30));
    assert!(ok, "{err}");
    let svg = std::fs::read_to_string(&svg).unwrap();
    let caption = svg
        .lines()
        .find(|l| l.contains("class=\"subtitle\""))
        .expect("a caption");
    assert!(
        caption.contains(&format!("on {}</text>", host.trim())) && caption.contains("started 20"),
        "{caption}"
    );
}
