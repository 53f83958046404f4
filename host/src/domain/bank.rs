//! Bank details for a refund to an alternative account (SPEC §2.4, AaaS seed:
//! "IBAN, bankAccountOwner, BIC (only mandatory in case the account is
//! located outside the SEPA-area)").
//!
//! - `accountOwner` and `iban` are required (`validation-failed` otherwise).
//! - The IBAN is checked by the `iban_validate` crate: ISO 13616 structure,
//!   the mod-97 check digits, and the length and format of the account part
//!   for its country per the SWIFT IBAN registry. Spaces (the paper form) and
//!   lower case are accepted and normalised to the electronic form.
//! - The BIC, when given, must be an ISO 9362 code of 8 or 11 characters.
//! - A BIC is required only when the IBAN's country is outside SEPA
//!   ([`SEPA_IBAN_COUNTRIES`]).

use iban::{Iban, IbanLike, ParseBaseIbanError, ParseIbanError};

use super::refusal::{FieldError, IbanProblem, Refusal};

/// The IBAN country codes of the SEPA schemes' geographical scope.
///
/// Source: European Payments Council, EPC409-09 "EPC List of Countries and
/// Territories of the SEPA Schemes' Geographical Scope", version 8.0: the 27
/// EU member states, the other EEA states (IS, LI, NO), and AD, AL, CH, GB,
/// GI, MC, MD, ME, MK, RS, SM, VA. Territories in the scope (e.g. the Åland
/// Islands, the French overseas departments, Guernsey, Jersey, the Isle of
/// Man) bank under their state's IBAN code (FI, FR, GB), which is listed.
///
/// This is the one place the list lives: update it when the EPC publishes a
/// new version.
pub const SEPA_IBAN_COUNTRIES: [&str; 42] = [
    "AD", "AL", "AT", "BE", "BG", "CH", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GB", "GI",
    "GR", "HR", "HU", "IE", "IS", "IT", "LI", "LT", "LU", "LV", "MC", "MD", "ME", "MK", "MT", "NL",
    "NO", "PL", "PT", "RO", "RS", "SE", "SI", "SK", "SM", "VA",
];

/// Whether an IBAN country code is in SEPA.
pub fn is_sepa_country(country: &str) -> bool {
    SEPA_IBAN_COUNTRIES.contains(&country)
}

/// Bank details as the client sent them; every field may be missing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BankDetailsInput {
    /// Who holds the account.
    pub account_owner: Option<String>,
    /// The account's IBAN, electronic or paper form.
    pub iban: Option<String>,
    /// The bank's BIC.
    pub bic: Option<String>,
}

/// Validated bank details, ready to pass to the ERP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankDetails {
    /// Who holds the account, trimmed.
    pub account_owner: String,
    /// The IBAN in electronic form (no spaces, upper case).
    pub iban: String,
    /// The BIC, upper case; `None` only for an account in SEPA.
    pub bic: Option<String>,
}

/// Validates bank details, in this order: `accountOwner` and `iban`
/// present (both reported together), the IBAN, then the BIC.
pub fn validate_bank_details(input: &BankDetailsInput) -> Result<BankDetails, Refusal> {
    let owner = input
        .account_owner
        .as_deref()
        .map(str::trim)
        .filter(|o| !o.is_empty());
    let iban_raw = input.iban.as_deref().filter(|i| !i.trim().is_empty());
    let mut missing = Vec::new();
    if owner.is_none() {
        missing.push(FieldError::new(
            "bankDetails.accountOwner",
            "is required with bank details",
        ));
    }
    if iban_raw.is_none() {
        missing.push(FieldError::new(
            "bankDetails.iban",
            "is required with bank details",
        ));
    }
    let (Some(owner), Some(iban_raw)) = (owner, iban_raw) else {
        return Err(Refusal::ValidationFailed { errors: missing });
    };
    let iban = parse_iban(iban_raw)?;
    let country = iban.country_code();
    let bic = match input.bic.as_deref().map(str::trim) {
        Some(bic) if !bic.is_empty() => Some(parse_bic(bic)?),
        _ if is_sepa_country(country) => None,
        _ => {
            return Err(Refusal::BicRequired {
                country: country.to_owned(),
            });
        }
    };
    Ok(BankDetails {
        account_owner: owner.to_owned(),
        iban: iban.electronic_str().to_owned(),
        bic,
    })
}

/// Parses an IBAN after removing spaces and upper-casing it.
pub fn parse_iban(raw: &str) -> Result<Iban, Refusal> {
    let electronic: String = raw
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let problem = match electronic.parse::<Iban>() {
        Ok(iban) => return Ok(iban),
        Err(ParseIbanError::InvalidBaseIban {
            source: ParseBaseIbanError::InvalidChecksum,
        }) => IbanProblem::Checksum,
        Err(ParseIbanError::InvalidBaseIban { .. }) => IbanProblem::Format,
        // Structurally valid, but no bank can be paid with it.
        Err(ParseIbanError::UnknownCountry(_)) => IbanProblem::UnknownCountry,
        Err(ParseIbanError::InvalidBban(_)) => IbanProblem::CountryFormat,
    };
    Err(Refusal::InvalidIban { problem })
}

/// Parses a BIC (ISO 9362): a 4-character business party prefix (letters or
/// digits, as allowed since ISO 9362:2014), a 2-letter country code, a
/// 2-character location, and optionally a 3-character branch code. Lower
/// case is accepted and upper-cased.
pub fn parse_bic(raw: &str) -> Result<String, Refusal> {
    let bic = raw.to_ascii_uppercase();
    let bytes = bic.as_bytes();
    let valid = (bytes.len() == 8 || bytes.len() == 11)
        && bytes.iter().all(u8::is_ascii_alphanumeric)
        && bytes[4..6].iter().all(u8::is_ascii_alphabetic);
    if valid {
        Ok(bic)
    } else {
        Err(Refusal::InvalidBic {
            bic: raw.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(owner: Option<&str>, iban: Option<&str>, bic: Option<&str>) -> BankDetailsInput {
        BankDetailsInput {
            account_owner: owner.map(str::to_owned),
            iban: iban.map(str::to_owned),
            bic: bic.map(str::to_owned),
        }
    }

    #[test]
    fn iban_table() {
        // SPEC §2.4: "IBAN checked by country length and ISO 13616 mod-97";
        // AaaS seed sample IBAN DE51100100501234567890, docs/api.md's DE89370400440532013000.
        use IbanProblem::*;
        let cases: &[(&str, Result<&str, IbanProblem>)] = &[
            ("DE51100100501234567890", Ok("DE51100100501234567890")),
            ("DE89 3704 0044 0532 0130 00", Ok("DE89370400440532013000")),
            ("de89370400440532013000", Ok("DE89370400440532013000")),
            ("GB29NWBK60161331926819", Ok("GB29NWBK60161331926819")),
            ("DE89370400440532013001", Err(Checksum)),
            ("DE8937040044053201300", Err(Checksum)), // one digit short: checksum breaks first
            ("DE14370400440532013000999", Err(Checksum)),
            ("NO9386011117947", Ok("NO9386011117947")),
            ("NO938601111794", Err(Checksum)),
            ("XX89370400440532013000", Err(Checksum)),
            ("", Err(Format)),
            ("DE89-3704-0044", Err(Format)),
        ];
        for &(raw, expected) in cases {
            let got = parse_iban(raw).map(|i| i.electronic_str().to_owned());
            let expected = expected
                .map(str::to_owned)
                .map_err(|problem| Refusal::InvalidIban { problem });
            assert_eq!(got, expected, "{raw}");
        }
    }

    #[test]
    fn iban_of_the_wrong_length_for_its_country_is_refused() {
        // A German IBAN is 22 characters; these carry correct mod-97 check digits
        // for their length, so only the per-country length rule catches them.
        for raw in ["DE1837040044053201300", "DE58370400440532013000123"] {
            let with_valid_checksum = fix_check_digits(raw);
            assert_eq!(
                parse_iban(&with_valid_checksum),
                Err(Refusal::InvalidIban {
                    problem: IbanProblem::CountryFormat
                }),
                "{with_valid_checksum}"
            );
        }
        // An unregistered country with valid check digits.
        assert_eq!(
            parse_iban(&fix_check_digits("ZZ00123456789")),
            Err(Refusal::InvalidIban {
                problem: IbanProblem::UnknownCountry
            })
        );
    }

    /// Recomputes the mod-97 check digits of an IBAN-shaped string
    /// (ISO 13616: move the first four characters to the end, letters as
    /// 10..35, 98 minus the remainder).
    fn fix_check_digits(raw: &str) -> String {
        let rearranged = format!("{}{}00", &raw[4..], &raw[..2]);
        let remainder = rearranged.chars().fold(0u32, |acc, c| {
            let value = c.to_digit(36).unwrap();
            if value >= 10 {
                (acc * 100 + value) % 97
            } else {
                (acc * 10 + value) % 97
            }
        });
        format!("{}{:02}{}", &raw[..2], 98 - remainder, &raw[4..])
    }

    #[test]
    fn bic_table() {
        // SPEC §2.4: "bic (ISO 9362, 8 or 11 characters)"; AaaS seed BIC GENODEM1MSC.
        let cases: &[(&str, Result<&str, ()>)] = &[
            ("GENODEM1MSC", Ok("GENODEM1MSC")),
            ("COBADEFF", Ok("COBADEFF")),
            ("COBADEFFXXX", Ok("COBADEFFXXX")),
            ("cobadeffxxx", Ok("COBADEFFXXX")),
            ("1BANDEFF", Ok("1BANDEFF")),
            ("COBADEF", Err(())),
            ("COBADEFFX", Err(())),
            ("COBADEFFXX", Err(())),
            ("COBADEFFXXXX", Err(())),
            ("COBA1EFF", Err(())),
            ("COBADEFF-XX", Err(())),
            ("COBA DEFF", Err(())),
            ("", Err(())),
        ];
        for &(raw, expected) in cases {
            let expected = expected
                .map(str::to_owned)
                .map_err(|()| Refusal::InvalidBic {
                    bic: raw.to_owned(),
                });
            assert_eq!(parse_bic(raw), expected, "{raw}");
        }
    }

    #[test]
    fn bic_required_only_outside_sepa() {
        // AaaS seed: "BIC (only mandatory in case the account is located outside the SEPA-area)".
        let de = "DE89370400440532013000";
        let ch = "CH9300762011623852957"; // Switzerland: outside the EEA, inside SEPA
        let tr = "TR330006100519786457841326"; // Turkey: outside SEPA
        let br = "BR1800360305000010009795493C1";
        let ok = |iban: &str, bic: Option<&str>| {
            Ok(BankDetails {
                account_owner: "Max Mustermann".into(),
                iban: iban.into(),
                bic: bic.map(str::to_owned),
            })
        };
        let cases = vec![
            (de, None, ok(de, None)),
            (de, Some("COBADEFFXXX"), ok(de, Some("COBADEFFXXX"))),
            (ch, None, ok(ch, None)),
            (
                tr,
                None,
                Err(Refusal::BicRequired {
                    country: "TR".into(),
                }),
            ),
            (tr, Some("TGBATRIS"), ok(tr, Some("TGBATRIS"))),
            (
                br,
                None,
                Err(Refusal::BicRequired {
                    country: "BR".into(),
                }),
            ),
            (
                br,
                Some(" "),
                Err(Refusal::BicRequired {
                    country: "BR".into(),
                }),
            ),
            (
                tr,
                Some("TGBA"),
                Err(Refusal::InvalidBic { bic: "TGBA".into() }),
            ),
            (
                de,
                Some("NOT A BIC"),
                Err(Refusal::InvalidBic {
                    bic: "NOT A BIC".into(),
                }),
            ),
        ];
        for (iban, bic, expected) in cases {
            let got = validate_bank_details(&input(Some(" Max Mustermann "), Some(iban), bic));
            assert_eq!(got, expected, "{iban} {bic:?}");
        }
    }

    #[test]
    fn owner_and_iban_are_required() {
        // SPEC §2.4: "bankDetails: accountOwner and iban required".
        let fields = |i: BankDetailsInput| match validate_bank_details(&i) {
            Err(Refusal::ValidationFailed { errors }) => {
                errors.into_iter().map(|e| e.field).collect::<Vec<_>>()
            }
            other => panic!("expected validation-failed, got {other:?}"),
        };
        assert_eq!(
            fields(input(None, Some("DE89370400440532013000"), None)),
            ["bankDetails.accountOwner"]
        );
        assert_eq!(
            fields(input(Some("  "), Some("DE89370400440532013000"), None)),
            ["bankDetails.accountOwner"]
        );
        assert_eq!(fields(input(Some("Max"), None, None)), ["bankDetails.iban"]);
        assert_eq!(
            fields(input(None, Some(""), Some("COBADEFF"))),
            ["bankDetails.accountOwner", "bankDetails.iban"]
        );
    }

    #[test]
    fn sepa_list_has_no_duplicates_and_holds_the_eea() {
        let mut sorted = SEPA_IBAN_COUNTRIES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), SEPA_IBAN_COUNTRIES.len());
        for eea in ["DE", "FR", "IS", "LI", "NO", "IE", "MT", "CY"] {
            assert!(is_sepa_country(eea), "{eea}");
        }
        for outside in ["US", "TR", "BR", "UA", "JP"] {
            assert!(!is_sepa_country(outside), "{outside}");
        }
    }
}
