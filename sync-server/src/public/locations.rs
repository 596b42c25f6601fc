//! The public list of reader locations: current and previous, with dates, withheld locations
//! absent (the query leaves them out).
use super::{Links, csv_field, escape, page};
use std::fmt::Write;
use trailer_wire::console::PublicLocation;

/// The page; `withheld` is how many locations are left out as security information (Minn.
/// Stat. 13.824 subd. 5(b)): the public learns that some are withheld, never which or where.
pub fn html(locs: &[PublicLocation], withheld: i64, agency: &str, links: Links) -> String {
    let ext = links.0;
    let mut body = format!(
        "<p>Current and previous locations of the agency's stationary readers, with the dates \
         each stood there. Also as <a href=\"locations.csv\">CSV</a>, \
         <a href=\"locations.json\">JSON</a> and <a href=\"locations.geojson\">GeoJSON</a>; \
         the <a href=\"log{ext}\">log of use</a> says when each collected.</p>\
         <table id=\"locations\"><thead><tr><th>Reader</th><th>Location</th><th>Latitude</th>\
         <th>Longitude</th><th>From</th><th>Until</th></tr></thead><tbody>"
    );
    for l in locs {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{:.5}</td><td class=\"num\">{:.5}</td>\
             <td>{}</td><td>{}</td></tr>",
            escape(&l.reader),
            escape(&l.place),
            l.lat,
            l.lon,
            l.from,
            l.until.as_deref().unwrap_or("current")
        );
    }
    if locs.is_empty() {
        body.push_str("<tr><td colspan=\"6\">No locations yet.</td></tr>");
    }
    body.push_str("</tbody></table>");
    let _ = write!(
        body,
        "<p id=\"withheld\">{}</p>",
        match withheld {
            0 => "No location is withheld.".to_string(),
            1 => "1 location is withheld as security information (Minn. Stat. 13.824 subd. 5)."
                .to_string(),
            n => format!(
                "{n} locations are withheld as security information (Minn. Stat. 13.824 subd. 5)."
            ),
        }
    );
    page("Automated license plate reader locations", agency, links, &body)
}

pub fn json(locs: &[PublicLocation]) -> String {
    serde_json::to_string(locs).unwrap_or_default()
}

pub fn csv(locs: &[PublicLocation]) -> String {
    let mut out = String::from("reader,location,latitude,longitude,from,until\n");
    for l in locs {
        let _ = writeln!(
            out,
            "{},{},{:.5},{:.5},{},{}",
            csv_field(&l.reader),
            csv_field(&l.place),
            l.lat,
            l.lon,
            l.from,
            l.until.as_deref().unwrap_or_default()
        );
    }
    out
}

/// RFC 7946 GeoJSON: one point per location (longitude first).
pub fn geojson(locs: &[PublicLocation]) -> String {
    let features: Vec<serde_json::Value> = locs
        .iter()
        .map(|l| {
            serde_json::json!({
                "type": "Feature",
                "geometry": { "type": "Point", "coordinates": [
                    (l.lon * 1e5).round() / 1e5, (l.lat * 1e5).round() / 1e5] },
                "properties": { "reader": l.reader, "location": l.place, "from": l.from,
                    "until": l.until },
            })
        })
        .collect();
    serde_json::json!({ "type": "FeatureCollection", "features": features }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc() -> PublicLocation {
        PublicLocation {
            reader: "t1".into(),
            place: "Main & 5th".into(),
            lat: 44.163_61,
            lon: -93.999_42,
            from: "2026-11-01".into(),
            until: None,
        }
    }

    #[test]
    fn geojson_points_are_lon_lat() {
        let g: serde_json::Value = serde_json::from_str(&geojson(&[loc()])).expect("json");
        assert_eq!(g["type"], "FeatureCollection");
        let f = &g["features"][0];
        assert_eq!(f["geometry"]["coordinates"], serde_json::json!([-93.99942, 44.16361]));
        assert_eq!(f["properties"]["location"], "Main & 5th");
        assert!(f["properties"]["until"].is_null());
    }

    #[test]
    fn html_escapes_and_says_current() {
        let h = html(&[loc()], 2, "PD <x>", Links(".html"));
        assert!(
            h.contains("Main &amp; 5th") && h.contains("current") && h.contains("PD &lt;x&gt;")
        );
        assert!(h.contains("2 locations are withheld as security information"), "{h}");
        assert!(h.contains("href=\"log.html\""));
    }
}
