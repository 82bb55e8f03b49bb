//! Call lists: CSV import and number normalisation.
//!
//! The CSV needs a header row with a `number` column (case-insensitive); every other column is
//! kept as a string attribute of the lead. A bad row (empty or invalid number, wrong number of
//! fields, a duplicate) is reported with its line number and reason and skipped; the other rows
//! are imported.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use serde::Serialize;

/// A lead ready to store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewLead {
    /// The number to dial (E.164 where a region is set, else digits with an optional `+`).
    pub number: String,
    /// The number as written in the file.
    pub raw_number: String,
    /// The other columns.
    pub attributes: BTreeMap<String, String>,
    /// 1-based line in the file (the header is line 1).
    pub line: u64,
}

/// A rejected row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// 1-based line in the file.
    pub line: u64,
    /// Why it was rejected.
    pub reason: String,
}

/// The outcome of reading a call list.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Import {
    /// Rows accepted.
    pub leads: Vec<NewLead>,
    /// Rows rejected.
    pub errors: Vec<RowError>,
}

/// Normalises a phone number.
///
/// Spaces, dashes, dots and parentheses are removed. With `region`, the number is parsed by
/// libphonenumber's rules (the `phonenumber` crate), must be a valid number, and is returned in
/// E.164 (`+14155550100`). Without a region, 3 to 15 digits with an optional leading `+` are
/// accepted as written (ITU-T E.164 allows at most 15 digits).
/// Errors: a text saying why the number is not dialable.
///
/// ```
/// use outdial_core::campaign::leads::normalise;
/// let us = "US".parse().unwrap();
/// assert_eq!(normalise("(650) 253-0000", Some(us)).unwrap(), "+16502530000");
/// assert_eq!(normalise("+44 20 7946 0018", None).unwrap(), "+442079460018");
/// assert!(normalise("call me", None).is_err());
/// ```
pub fn normalise(raw: &str, region: Option<phonenumber::country::Id>) -> Result<String, String> {
    let cleaned: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}'))
        .collect();
    if cleaned.is_empty() {
        return Err("empty number".into());
    }
    if let Some(region) = region {
        let n = phonenumber::parse(Some(region), &cleaned)
            .map_err(|e| format!("cannot parse {raw:?} as a phone number: {e}"))?;
        if !phonenumber::is_valid(&n) {
            return Err(format!(
                "{raw:?} is not a valid number for region {region:?}"
            ));
        }
        return Ok(n.format().mode(phonenumber::Mode::E164).to_string());
    }
    let digits = cleaned.strip_prefix('+').unwrap_or(&cleaned);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{raw:?} contains characters other than digits"));
    }
    if !(3..=15).contains(&digits.len()) {
        return Err(format!(
            "{raw:?} has {} digits; 3 to 15 are allowed",
            digits.len()
        ));
    }
    Ok(cleaned)
}

/// Column names taken as the number, in order of preference (case-insensitive).
pub const NUMBER_COLUMNS: [&str; 5] = ["number", "phone_number", "phone", "msisdn", "telephone"];

/// The field delimiter of a call list: `,` unless the header line has more `;` or tabs
/// (European spreadsheet exports use `;`).
fn sniff_delimiter(data: &[u8]) -> u8 {
    let header = data.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let count = |d: u8| header.iter().filter(|b| **b == d).count();
    [b';', b'\t']
        .into_iter()
        .filter(|d| count(*d) > count(b','))
        .max_by_key(|d| count(*d))
        .unwrap_or(b',')
}

/// Reads a call list. Errors (the whole file): unreadable, no header, or no `number` column.
/// Row-level problems are returned in [`Import::errors`].
pub fn read_csv<R: Read>(
    input: R,
    region: Option<phonenumber::country::Id>,
) -> anyhow::Result<Import> {
    let mut data = Vec::new();
    let mut input = input;
    input.read_to_end(&mut data)?;
    // Spreadsheet exports often start with a UTF-8 byte order mark.
    if data.starts_with(&[0xEF, 0xBB, 0xBF]) {
        data.drain(..3);
    }
    let delimiter = sniff_delimiter(&data);
    // Line numbers from byte offsets: the csv crate does not count skipped blank lines.
    let newlines: Vec<usize> = memchr::memchr_iter(b'\n', &data).collect();
    // (A record's position can point at blank lines skipped before it: step over them.)
    let line_of = |byte: u64| {
        let mut b = byte as usize;
        while b < data.len() && (data[b] == b'\n' || data[b] == b'\r') {
            b += 1;
        }
        newlines.partition_point(|&nl| nl < b) as u64 + 1
    };
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(data.as_slice());
    let headers = rdr.headers()?.clone();
    let number_col = NUMBER_COLUMNS
        .iter()
        .find_map(|name| headers.iter().position(|h| h.eq_ignore_ascii_case(name)))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "call list has no `number` column (header row: {:?})",
                headers.iter().collect::<Vec<_>>()
            )
        })?;
    let mut out = Import::default();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| line_of(p.byte())).unwrap_or(0);
                out.errors.push(RowError {
                    line,
                    reason: format!("unreadable row: {e}"),
                });
                continue;
            }
        };
        let line = rec.position().map(|p| line_of(p.byte())).unwrap_or(0);
        if rec.iter().all(|f| f.is_empty()) {
            continue; // blank line
        }
        if rec.len() != headers.len() {
            out.errors.push(RowError {
                line,
                reason: format!("{} fields, the header has {}", rec.len(), headers.len()),
            });
            continue;
        }
        let raw = rec.get(number_col).unwrap_or("").to_string();
        let number = match normalise(&raw, region) {
            Ok(n) => n,
            Err(reason) => {
                out.errors.push(RowError { line, reason });
                continue;
            }
        };
        if let Some(first) = seen.get(&number) {
            out.errors.push(RowError {
                line,
                reason: format!("duplicate of line {first} ({number})"),
            });
            continue;
        }
        seen.insert(number.clone(), line);
        let attributes = headers
            .iter()
            .zip(rec.iter())
            .enumerate()
            .filter(|(i, _)| *i != number_col)
            .map(|(_, (h, v))| (h.to_string(), v.to_string()))
            .collect();
        out.leads.push(NewLead {
            number,
            raw_number: raw,
            attributes,
            line,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_good_rows_and_reports_bad_ones() {
        let csv = "number,name,plan\n\
+14155550100,Ann,gold\n\
,Bob,silver\n\
415-555-01x0,Cy,gold\n\
+1 (415) 555-0101,Dee,bronze\n\
+14155550100,Eve,gold\n\
+14155550102,Fay\n\
\n\
12,Gus,x\n";
        let imp = read_csv(csv.as_bytes(), None).unwrap();
        let numbers: Vec<_> = imp.leads.iter().map(|l| l.number.as_str()).collect();
        assert_eq!(numbers, vec!["+14155550100", "+14155550101"]);
        assert_eq!(imp.leads[0].attributes["name"], "Ann");
        assert_eq!(imp.leads[0].attributes["plan"], "gold");
        assert!(!imp.leads[0].attributes.contains_key("number"));
        let errs: Vec<_> = imp
            .errors
            .iter()
            .map(|e| (e.line, e.reason.clone()))
            .collect();
        assert_eq!(errs.len(), 5, "{errs:?}");
        assert_eq!(errs[0].0, 3);
        assert!(errs[0].1.contains("empty"));
        assert_eq!(errs[1].0, 4);
        assert_eq!(errs[2].0, 6);
        assert!(errs[2].1.contains("duplicate of line 2"));
        assert_eq!(errs[3].0, 7);
        assert!(errs[3].1.contains("fields"));
        assert_eq!(errs[4].0, 9);
    }

    #[test]
    fn bom_semicolons_and_column_aliases() {
        let csv = "\u{feff}Name;Phone;Plan\nAnn;+1 415 555 0100;gold\nBob;x;silver\n";
        let imp = read_csv(csv.as_bytes(), None).unwrap();
        assert_eq!(imp.leads.len(), 1);
        assert_eq!(imp.leads[0].number, "+14155550100");
        assert_eq!(imp.leads[0].attributes["Name"], "Ann");
        assert_eq!(imp.errors[0].line, 3);
        let tsv = "number\tname\n1001\tdesk\n";
        assert_eq!(
            read_csv(tsv.as_bytes(), None).unwrap().leads[0].number,
            "1001"
        );
    }

    #[test]
    fn region_normalises_to_e164() {
        let us = "US".parse().unwrap();
        assert_eq!(
            normalise("(650) 253-0000", Some(us)).unwrap(),
            "+16502530000"
        );
        let gb = "GB".parse().unwrap();
        assert_eq!(
            normalise("020 7946 0018", Some(gb)).unwrap(),
            "+442079460018"
        );
        assert!(normalise("12", Some(us)).is_err());
    }

    #[test]
    fn missing_number_column_is_a_file_error() {
        let e = read_csv("tel,name\n1,2\n".as_bytes(), None).unwrap_err();
        assert!(e.to_string().contains("number"));
    }
}
