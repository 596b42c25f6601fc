//! The plate engine with its real default models (run `make setup` first): the recogniser and
//! CTC decoding on rendered plates, and clear errors for pictures and models it cannot use.
use appliance::engine::{Engine, EngineConfig, EngineError, PlateBox, RgbImage, load_picture};
use e2e_tests::scene::{Renderer, Vehicle};
use std::sync::{Mutex, OnceLock};

fn engine() -> &'static Mutex<Engine> {
    static E: OnceLock<Mutex<Engine>> = OnceLock::new();
    E.get_or_init(|| {
        Mutex::new(Engine::load(&EngineConfig::default()).expect("engine (run make setup)"))
    })
}

#[test]
fn recogniser_reads_rendered_plates_through_ctc() -> anyhow::Result<()> {
    let renderer = Renderer::new(1280, 720, 3)?;
    let mut engine = engine().lock().map_err(|_| anyhow::anyhow!("engine poisoned"))?;
    for plate in ["ABC1234", "KRT582", "MXN4410", "ZV70915"] {
        let v = Vehicle { plate: plate.into(), body: [170, 25, 30], plate_w: 135, baseline: 620 };
        let mut img = renderer.background();
        let (x, y, w, h) = renderer.draw_vehicle(&mut img, &v, 640);
        let bbox = PlateBox { x: x as f32, y: y as f32, w: w as f32, h: h as f32 };
        let read = engine.read_box(&img, bbox, 1.0)?.expect("a read");
        // The state name above the characters is trimmed off; the characters decode exactly.
        assert_eq!(read.text, plate);
        assert_eq!(read.char_confidences.len(), plate.len());
        assert!(read.confidence > 0.8, "{read:?}");
    }
    // A blank plate field reads as nothing, not as junk characters.
    let img = RgbImage::from_pixel(300, 150, image::Rgb([242, 242, 238]));
    let none = engine.read_box(&img, PlateBox { x: 10.0, y: 10.0, w: 280.0, h: 130.0 }, 1.0)?;
    assert!(none.is_none(), "{none:?}");
    Ok(())
}

/// A PNG whose header claims `w` x `h` pixels, with no pixel data.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(13u32.to_be_bytes());
    png.extend(&ihdr);
    png.extend(crc32(&ihdr).to_be_bytes());
    png
}

#[test]
fn pictures_it_cannot_use_get_clear_errors() -> anyhow::Result<()> {
    let mut engine = engine().lock().map_err(|_| anyhow::anyhow!("engine poisoned"))?;
    let too_small = engine.read(&RgbImage::new(0, 0)).expect_err("0x0");
    assert!(matches!(too_small, EngineError::Picture { width: 0, height: 0, .. }));
    assert_eq!(too_small.to_string(), "picture of 0x0 cannot be read: smaller than 16x16 pixels");
    let too_wide = engine.read(&RgbImage::new(20000, 16)).expect_err("20000 wide");
    assert!(too_wide.to_string().contains("larger than 16384"), "{too_wide}");

    // Files: a 20000x20000 header is refused before any pixel memory is taken; a truncated JPEG
    // and an empty file fail to decode.
    let dir = tempfile::tempdir()?;
    let huge = dir.path().join("huge.png");
    std::fs::write(&huge, png_header(20000, 20000))?;
    let err = load_picture(&huge).expect_err("huge");
    assert!(err.contains("cannot decode") && err.contains("limit"), "{err}");
    let truncated = dir.path().join("cut.jpg");
    std::fs::write(&truncated, [0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, b'J', b'F'])?;
    assert!(load_picture(&truncated).expect_err("truncated").contains("cannot decode"));
    let empty = dir.path().join("empty.jpg");
    std::fs::write(&empty, [])?;
    assert!(load_picture(&empty).is_err());
    Ok(())
}

#[test]
fn models_of_the_wrong_kind_or_place_are_refused() {
    let good = EngineConfig::default();
    // The recogniser where the detector belongs, and the other way round.
    let swapped = EngineConfig {
        detector_model: good.recogniser_model.clone(),
        recogniser_model: good.detector_model.clone(),
        ..good.clone()
    };
    let err = Engine::load(&swapped).expect_err("swapped models");
    assert!(matches!(err, EngineError::ModelShape { .. }), "{err}");
    assert!(err.to_string().contains("wrong shape"), "{err}");
    let err = Engine::load(&EngineConfig {
        recogniser_model: good.detector_model.clone(),
        ..good.clone()
    })
    .expect_err("a detector as recogniser");
    assert!(err.to_string().contains("recogniser input must be [N,3,48,W]"), "{err}");
    // A file that is not a model at all.
    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"not a model").expect("write");
    let err = Engine::load(&EngineConfig { detector_model: junk, ..good.clone() })
        .expect_err("junk model");
    assert!(matches!(err, EngineError::Model { .. }), "{err}");
    // A path with nothing there.
    let err = Engine::load(&EngineConfig { detector_model: "/nonexistent/d.onnx".into(), ..good })
        .expect_err("missing model");
    assert!(err.to_string().contains("detector model not found at /nonexistent/d.onnx"));
}
