//! The cancellation date (SPEC §2.5): `YYYY-MM-DD`, today (UTC) by default,
//! not in the future and not before the order date.

use time::Date;
use time::macros::format_description;

use super::refusal::{DateProblem, Refusal};

/// Parses `YYYY-MM-DD` strictly: four-digit year, two-digit month and day,
/// a real calendar day.
pub fn parse_date(raw: &str) -> Option<Date> {
    let well_formed = raw.len() == 10
        && raw.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !well_formed {
        return None;
    }
    Date::parse(raw, format_description!("[year]-[month]-[day]")).ok()
}

/// The date a request ends up with: the given one, or `today` when there is
/// none; either must lie between the order date and today, inclusive. A
/// defaulted date is checked too: if the order is dated after today (clocks
/// of two systems disagree), the cancellation cannot be dated honestly and is
/// refused rather than back-dated or forward-dated.
pub fn resolve_date(raw: Option<&str>, order_date: Date, today: Date) -> Result<Date, Refusal> {
    let date = match raw {
        None => today,
        Some(raw) => parse_date(raw).ok_or_else(|| Refusal::InvalidDate {
            date: raw.to_owned(),
            problem: DateProblem::Unparsable,
        })?,
    };
    let problem = if date > today {
        Some(DateProblem::InFuture)
    } else if date < order_date {
        Some(DateProblem::BeforeOrderDate)
    } else {
        None
    };
    match problem {
        None => Ok(date),
        Some(problem) => Err(Refusal::InvalidDate {
            date: raw.map_or_else(|| date.to_string(), str::to_owned),
            problem,
        }),
    }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn date_table() {
        // SPEC §2.5: "defaults to today (UTC); not before the order date, not in the future";
        // AaaS seed: "cancellationDate": "2024-09-09".
        let ordered = date!(2024 - 09 - 01);
        let today = date!(2024 - 09 - 10);
        let bad = |raw: &str, problem| {
            Err(Refusal::InvalidDate {
                date: raw.to_owned(),
                problem,
            })
        };
        use DateProblem::*;
        let cases: Vec<(Option<&str>, Result<Date, Refusal>)> = vec![
            (None, Ok(today)),
            (Some("2024-09-09"), Ok(date!(2024 - 09 - 09))),
            (Some("2024-09-01"), Ok(ordered)),
            (Some("2024-09-10"), Ok(today)),
            (Some("2024-09-11"), bad("2024-09-11", InFuture)),
            (Some("2024-08-31"), bad("2024-08-31", BeforeOrderDate)),
            (Some("2024-02-30"), bad("2024-02-30", Unparsable)),
            (Some("2024-9-9"), bad("2024-9-9", Unparsable)),
            (Some("09/09/2024"), bad("09/09/2024", Unparsable)),
            (
                Some("2024-09-09T00:00:00Z"),
                bad("2024-09-09T00:00:00Z", Unparsable),
            ),
            (Some(""), bad("", Unparsable)),
            (Some("+2024-09-0"), bad("+2024-09-0", Unparsable)),
            (Some("２０２４-09-09"), bad("２０２４-09-09", Unparsable)),
        ];
        for (raw, expected) in cases {
            assert_eq!(resolve_date(raw, ordered, today), expected, "{raw:?}");
        }
    }

    #[test]
    fn defaulted_date_before_the_order_date_is_refused() {
        let result = resolve_date(None, date!(2024 - 09 - 02), date!(2024 - 09 - 01));
        assert_eq!(
            result,
            Err(Refusal::InvalidDate {
                date: "2024-09-01".into(),
                problem: DateProblem::BeforeOrderDate
            })
        );
    }
}
