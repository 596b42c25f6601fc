//! CSV files the server writes (public downloads, a release's reads), with the `csv` crate.
/// Writes CSV with the `csv` crate. Text fields that a spreadsheet would run as a formula
/// (`=`, `+`, `-`, `@` first) are defused with a leading apostrophe; numbers are written as
/// numbers.
pub struct Csv {
    out: csv::Writer<Vec<u8>>,
}

/// One CSV field.
pub enum Field<'a> {
    Text(&'a str),
    Num(String),
}

impl Csv {
    pub fn new(header: &[&str]) -> Csv {
        let mut out = csv::Writer::from_writer(Vec::new());
        let _ = out.write_record(header);
        Csv { out }
    }

    pub fn row(&mut self, fields: &[Field<'_>]) {
        let cells: Vec<String> = fields
            .iter()
            .map(|f| match f {
                Field::Text(t) if t.starts_with(['=', '+', '-', '@']) => format!("'{t}"),
                Field::Text(t) => (*t).to_string(),
                Field::Num(n) => n.clone(),
            })
            .collect();
        let _ = self.out.write_record(&cells);
    }

    pub fn finish(self) -> String {
        let bytes = self.out.into_inner().unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas_but_not_numbers() {
        let mut c = Csv::new(&["a", "b", "c"]);
        c.row(&[
            Field::Text("Main St, 5th"),
            Field::Text("=HYPERLINK(1)"),
            Field::Num("-93.5".into()),
        ]);
        c.row(&[Field::Text("say \"hi\""), Field::Text("@x"), Field::Num("7".into())]);
        assert_eq!(
            c.finish(),
            "a,b,c\n\"Main St, 5th\",'=HYPERLINK(1),-93.5\n\"say \"\"hi\"\"\",'@x,7\n"
        );
    }
}
