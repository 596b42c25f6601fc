//! The capture stage on real files made here with GStreamer: a whole H.264 file plays to its
//! end; truncated, corrupt and foreign files give a typed error, never a panic or a hang.
use appliance::capture::{Capture, CaptureError, Next};
use appliance::config::{CaptureConfig, Pacing};
use gstreamer as gst;
use gstreamer::prelude::*;
use std::path::Path;
use std::time::Duration;

fn make_h264(path: &Path, frames: u32) {
    gst::init().expect("gst");
    let desc = format!(
        "videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,width=320,height=240,framerate=10/1 ! \
         x264enc speed-preset=ultrafast key-int-max=10 ! h264parse ! mp4mux ! filesink location=\"{}\"",
        path.display()
    );
    let pipeline = gst::parse::launch(&desc).expect("pipeline");
    pipeline.set_state(gst::State::Playing).expect("play");
    let bus = pipeline.bus().expect("bus");
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("the encoder finishes");
    assert!(matches!(msg.view(), gst::MessageView::Eos(_)), "encoder: {msg:?}");
    pipeline.set_state(gst::State::Null).expect("stop");
}

/// Plays a file to its end or first error; `stall_ms` without a frame or an end is an error.
fn play(path: &Path, stall_ms: u64) -> Result<u64, CaptureError> {
    let cfg = CaptureConfig {
        source: path.display().to_string(),
        width: 160,
        max_fps: 0,
        stall_ms,
        pacing: Some(Pacing::EveryFrame),
        ..CaptureConfig::default()
    };
    let mut cap = Capture::open(&cfg)?;
    let mut frames = 0;
    for _ in 0..200 {
        match cap.next(Duration::from_millis(500))? {
            Next::Frame(_) => frames += 1,
            Next::EndOfStream => return Ok(frames),
            Next::Idle => {}
        }
    }
    panic!("no end of stream");
}

#[test]
fn whole_truncated_corrupt_and_foreign_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.mp4");
    make_h264(&good, 30);
    // A whole file gets time to start on a loaded machine; the damaged ones below are given up
    // on sooner.
    assert_eq!(play(&good, 10_000).expect("a whole file plays"), 30);

    let bytes = std::fs::read(&good).expect("read");
    // mp4mux writes its index last: half a file has media but no index.
    let truncated = dir.path().join("truncated.mp4");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    // The header intact, the media data overwritten with noise.
    let corrupt = dir.path().join("corrupt.mp4");
    let mut noisy = bytes.clone();
    for (i, b) in noisy.iter_mut().enumerate().skip(64) {
        *b = (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1];
    }
    std::fs::write(&corrupt, noisy).expect("write");
    let foreign = dir.path().join("notes.mp4");
    std::fs::write(&foreign, b"this is a text file, not a video\n").expect("write");
    let empty = dir.path().join("empty.mp4");
    std::fs::write(&empty, b"").expect("write");

    for bad in [&truncated, &corrupt, &foreign, &empty] {
        let outcome = play(bad, 1500);
        eprintln!("{bad:?}: {outcome:?}");
        match outcome {
            Err(CaptureError::Stream { element, message }) => {
                assert!(!message.is_empty() && !element.is_empty(), "{bad:?}: {element} {message}")
            }
            Err(e @ (CaptureError::Pipeline(_) | CaptureError::Stalled(_))) => {
                assert!(
                    e.to_string().contains("damaged") || matches!(e, CaptureError::Pipeline(_)),
                    "{e}"
                )
            }
            Err(e) => panic!("{bad:?}: unexpected error kind {e}"),
            // A damaged file may still decode to nothing and end cleanly; it must not invent frames.
            Ok(frames) => assert!(frames < 30, "{bad:?} gave {frames} frames"),
        }
    }
    let missing = play(&dir.path().join("missing.mp4"), 1500);
    assert!(matches!(missing, Err(CaptureError::FileNotFound(_))));
}
