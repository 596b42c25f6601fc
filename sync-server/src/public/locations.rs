//! The public list of reader locations (Minn. Stat. 13.824 subd. 5(b)): current and previous,
//! with the dates a reader stood there, on a map; withheld locations counted, never shown (the
//! query leaves them out).
use super::layout::{Agency, Csv, Field, Links, Page, page, scroll};
use super::map;
use maud::html;
use trailer_wire::console::PublicLocation;

/// How many locations are withheld, in words.
pub fn withheld_words(withheld: i64) -> String {
    match withheld {
        0 => "No location is withheld.".to_string(),
        1 => "1 location is withheld as security information (Minn. Stat. 13.824 subd. 5)."
            .to_string(),
        n => {
            format!(
                "{n} locations are withheld as security information (Minn. Stat. 13.824 subd. 5)."
            )
        }
    }
}

/// The page.
pub fn html(locs: &[PublicLocation], withheld: i64, agency: &Agency, links: Links) -> String {
    let main = html! {
        p {
            "Where the agency's license plate readers stood, now and before, with the dates each "
            "stood there. A trailer parked by a road is a stationary reader. The "
            a href=(links.page("log")) { "log of use" } " says when each one collected."
        }
        p #withheld { (withheld_words(withheld)) }
        (map::svg(locs))
        (scroll(html! {
            table #locations {
                caption { "Reader locations (" (locs.len()) ")" }
                thead { tr {
                    th scope="col" class="num" { "No." }
                    th scope="col" { "Place" }
                    th scope="col" { "Reader" }
                    th scope="col" { "From" }
                    th scope="col" { "Until" }
                    th scope="col" { "Map" }
                } }
                tbody {
                    @for (i, l) in locs.iter().enumerate() {
                        tr {
                            td.num { (i + 1) }
                            td { (l.place) }
                            td { (l.reader) }
                            td { (l.from) }
                            td { (l.until.as_deref().unwrap_or("still there")) }
                            td { a href=(map::osm(l)) aria-label={ "Open " (l.place) " on OpenStreetMap" } { "OpenStreetMap" } }
                        }
                    }
                    @if locs.is_empty() {
                        tr { td colspan="6" { "No locations yet." } }
                    }
                }
            }
        }))
        h2 { "Download" }
        ul {
            li { a href=(links.download("locations.csv", "")) { "Locations as CSV" } }
            li { a href=(links.download("locations.json", "")) { "Locations as JSON" } }
            li { a href=(links.download("locations.geojson", "")) { "Locations as GeoJSON (for map software)" } }
        }
    };
    page(Page::Locations, "Where the readers stood", agency, links, main)
}

pub fn json(locs: &[PublicLocation]) -> String {
    serde_json::to_string(locs).unwrap_or_default()
}

pub fn csv(locs: &[PublicLocation]) -> String {
    let mut c = Csv::new(&["reader", "location", "latitude", "longitude", "from", "until"]);
    for l in locs {
        c.row(&[
            Field::Text(&l.reader),
            Field::Text(&l.place),
            Field::Num(format!("{:.5}", l.lat)),
            Field::Num(format!("{:.5}", l.lon)),
            Field::Text(&l.from),
            Field::Text(l.until.as_deref().unwrap_or_default()),
        ]);
    }
    c.finish()
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
    fn the_page_escapes_maps_and_links_each_place() {
        let agency = Agency { name: "PD <x>".into(), ..Agency::default() };
        let h = html(&[loc()], 2, &agency, Links(".html"));
        assert!(
            h.contains("Main &amp; 5th") && h.contains("still there") && h.contains("PD &lt;x&gt;")
        );
        assert!(h.contains("2 locations are withheld as security information"), "{h}");
        assert!(h.contains("href=\"log.html\""));
        assert!(h.contains("<g class=\"point\">"), "the map shows the point");
        assert!(h.contains("openstreetmap.org/?mlat=44.16361&amp;mlon=-93.99942"), "{h}");
        assert!(h.contains("<caption>"));
    }

    #[test]
    fn csv_keeps_numbers_and_defuses_text() {
        let mut l = loc();
        l.place = "=cmd()".into();
        let c = csv(&[l]);
        assert!(c.contains("'=cmd(),44.16361,-93.99942,2026-11-01,"), "{c}");
    }
}
