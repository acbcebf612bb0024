//! Guest lists from spreadsheets.

use serde_json::json;
use validator::Validate;

use super::routes::{GuestIn, MAX_BULK};
use crate::{db::page::Side, error::Error, extract::validation_error};

#[derive(Clone, Copy)]
enum Column {
    Name,
    Side,
    Group,
    Phone,
}

fn column_of(header: &str) -> Option<Column> {
    match header
        .trim()
        .trim_start_matches('\u{feff}')
        .to_lowercase()
        .as_str()
    {
        "name" | "guestname" | "guest_name" | "이름" | "성함" => Some(Column::Name),
        "side" | "측" | "구분" => Some(Column::Side),
        "group" | "그룹" | "관계" => Some(Column::Group),
        "phone" | "전화" | "전화번호" | "연락처" => Some(Column::Phone),
        _ => None,
    }
}

fn side_of(value: &str) -> Result<Option<Side>, &'static str> {
    match value.trim().to_lowercase().as_str() {
        "" => Ok(None),
        "groom" | "신랑" | "신랑측" => Ok(Some(Side::Groom)),
        "bride" | "신부" | "신부측" => Ok(Some(Side::Bride)),
        _ => Err("must be groom or bride (신랑/신부)"),
    }
}

/// Parses and validates the whole file. Any bad row fails the import, and the error
/// lists every bad row so the couple can fix the file in one go.
pub fn parse_guest_csv(body: &[u8]) -> Result<Vec<GuestIn>, Error> {
    let text = std::str::from_utf8(body).map_err(|_| {
        Error::validation("file", "the CSV must be UTF-8 text").into_code("invalid_csv")
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| {
            Error::validation("file", format!("unreadable CSV header: {e}"))
                .into_code("invalid_csv")
        })?
        .clone();
    let columns: Vec<Option<Column>> = headers.iter().map(column_of).collect();
    if !columns.iter().any(|c| matches!(c, Some(Column::Name))) {
        return Err(
            Error::validation("file", "the CSV needs a name (이름) column")
                .into_code("invalid_csv"),
        );
    }

    let mut guests = Vec::new();
    let mut bad = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let row = index + 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                bad.push(
                    json!({"row": row, "field": null, "message": format!("unreadable row: {e}")}),
                );
                continue;
            }
        };
        if record.iter().all(|v| v.trim().is_empty()) {
            continue;
        }
        let mut guest = GuestIn {
            guest_name: String::new(),
            side: None,
            group: None,
            phone: None,
        };
        let mut row_ok = true;
        for (value, column) in record.iter().zip(&columns) {
            match column {
                Some(Column::Name) => guest.guest_name = value.to_owned(),
                Some(Column::Side) => match side_of(value) {
                    Ok(side) => guest.side = side,
                    Err(message) => {
                        bad.push(json!({"row": row, "field": "side", "message": message}));
                        row_ok = false;
                    }
                },
                Some(Column::Group) => {
                    guest.group = Some(value.to_owned()).filter(|v| !v.is_empty())
                }
                Some(Column::Phone) => {
                    guest.phone = Some(value.to_owned()).filter(|v| !v.is_empty())
                }
                None => {}
            }
        }
        if let Err(errors) = guest.validate() {
            let (field, message) = match validation_error(errors) {
                Error::Http { field, message, .. } => (field, message.into_owned()),
                other => (None, other.to_string()),
            };
            bad.push(json!({"row": row, "field": field, "message": message}));
            row_ok = false;
        }
        if row_ok {
            guests.push(guest);
        }
    }
    if !bad.is_empty() {
        return Err(Error::validation(
            "file",
            format!("{} row(s) are invalid; nothing was imported", bad.len()),
        )
        .into_code("invalid_csv_rows")
        .with_details(json!({"rows": bad})));
    }
    if guests.is_empty() {
        return Err(Error::validation("file", "the CSV has no guests").into_code("invalid_csv"));
    }
    if guests.len() > MAX_BULK {
        return Err(
            Error::validation("file", format!("at most {MAX_BULK} guests per import"))
                .into_code("invalid_csv"),
        );
    }
    Ok(guests)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn korean_headers_and_sides() {
        let csv = "\u{feff}이름,측,그룹,전화\n김철수,신랑,대학,010-1111-2222\nJane,bride,,\n";
        let guests = parse_guest_csv(csv.as_bytes()).unwrap();
        assert_eq!(guests.len(), 2);
        assert_eq!(guests[0].side, Some(Side::Groom));
        assert_eq!(guests[1].side, Some(Side::Bride));
        assert_eq!(guests[1].phone, None);
    }

    #[test]
    fn every_bad_row_is_reported() {
        let csv = "name,side,phone\nOk,groom,\n,groom,\nX,uncle,\nY,,12\n";
        let err = parse_guest_csv(csv.as_bytes()).unwrap_err();
        let Error::Http {
            details: Some(details),
            ..
        } = err
        else {
            panic!("expected details")
        };
        let rows: Vec<u64> = details["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["row"].as_u64().unwrap())
            .collect();
        assert_eq!(rows, vec![2, 3, 4]);
    }
}
