//! When an order may be cancelled (SPEC §2.1): the order status mapping, the
//! cancellable order statuses, the cancelled status, the presets, and the
//! per-website switch.
//!
//! Rule choice: the order's `status` is the ERP's code. The mapping entry with
//! that `erpCode` gives the display status and `allowCancellation`. The order
//! is cancellable only when such an entry exists, it allows cancellation,
//! **and** its display status is in `cancellableOrderStatuses` (both seeds:
//! "Enter the cancellable order statuses listed within the Order Status
//! Mapping screen", i.e. display statuses). A code without a mapping is not
//! cancellable: the operator has not said how to show it, let alone allowed
//! cancelling it.

use std::collections::BTreeSet;

use super::order::Order;
use super::refusal::{FieldError, Refusal};

/// How one ERP status code is shown and whether it allows cancellation
/// (Optimizely and InsiteCommerce "Order Status Mapping").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatusMapping {
    /// The code the ERP reports in the order's `status`.
    pub erp_code: String,
    /// The display status; `cancellableOrderStatuses` lists these.
    pub status: String,
    /// The mapping's "Allow Cancellation" option.
    pub allow_cancellation: bool,
}

/// The cancellation settings of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The order status mapping, one entry per ERP code.
    pub status_mappings: Vec<StatusMapping>,
    /// Display statuses in which an order may be cancelled (InsiteCommerce
    /// `OrderCancelStatuses`, Optimizely "Cancellable Order Statuses").
    pub cancellable_statuses: Vec<String>,
    /// The status code an order gets when its last line is cancelled (`X` in
    /// WebSphere, `Cancelled` in InsiteCommerce).
    pub cancelled_status: String,
}

/// The per-website switch `AllowCancellationRequest` (InsiteCommerce).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct WebsiteSettings {
    /// Whether customers may request cancellations on the website. Off by
    /// default, as in InsiteCommerce; staff may cancel either way.
    pub allow_cancellation_request: bool,
}

/// Settings an operator can start from (`POST /v1/admin/presets/{name}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// InsiteCommerce out of the box: `Submitted` orders may be cancelled and
    /// become `Cancelled`.
    Insite,
    /// WebSphere Commerce `OrderCancel`: statuses A, B, C, I, L, M, N and W
    /// may be cancelled, and become X.
    Websphere,
}

impl Preset {
    /// Every preset, for listing.
    pub const ALL: [Preset; 2] = [Preset::Insite, Preset::Websphere];

    /// The preset's name in the API (`insite`, `websphere`).
    pub fn name(self) -> &'static str {
        match self {
            Preset::Insite => "insite",
            Preset::Websphere => "websphere",
        }
    }

    /// The preset named `name`, ignoring ASCII case.
    pub fn parse(name: &str) -> Option<Preset> {
        Preset::ALL
            .into_iter()
            .find(|preset| preset.name().eq_ignore_ascii_case(name))
    }

    /// The preset's mappings and settings. Each code maps to a display status
    /// of the same name; the cancelled status is mapped too, without
    /// cancellation, so a cancelled order reads as such.
    pub fn settings(self) -> Settings {
        let (cancellable, cancelled): (&[&str], &str) = match self {
            // InsiteCommerce seed: OrderCancelStatuses "Submitted".
            Preset::Insite => (&["Submitted"], "Cancelled"),
            // WebSphere seed: "its status attribute specifies A, B, C, I, L, M,
            // N, or W" and "changing its order status to X". The seed's summary
            // omits W; its behaviour and exception sections list it and win
            // (SPEC §2.1).
            Preset::Websphere => (&["A", "B", "C", "I", "L", "M", "N", "W"], "X"),
        };
        let mapping = |code: &str, allow_cancellation: bool| StatusMapping {
            erp_code: code.to_owned(),
            status: code.to_owned(),
            allow_cancellation,
        };
        let mut status_mappings: Vec<StatusMapping> =
            cancellable.iter().map(|code| mapping(code, true)).collect();
        status_mappings.push(mapping(cancelled, false));
        Settings {
            status_mappings,
            cancellable_statuses: cancellable.iter().map(|s| (*s).to_owned()).collect(),
            cancelled_status: cancelled.to_owned(),
        }
    }
}

impl Settings {
    /// The mapping entry for an ERP status code.
    pub fn mapping(&self, erp_code: &str) -> Option<&StatusMapping> {
        self.status_mappings.iter().find(|m| m.erp_code == erp_code)
    }

    /// Whether an order whose ERP status is `erp_code` may be cancelled: it is
    /// mapped, its mapping allows cancellation, and its display status is
    /// cancellable.
    pub fn is_cancellable(&self, erp_code: &str) -> bool {
        self.mapping(erp_code)
            .is_some_and(|m| m.allow_cancellation && self.cancellable_statuses.contains(&m.status))
    }

    /// Checks the settings: mapping codes unique, no blank code or status,
    /// cancellable statuses not blank nor repeated, a cancelled status that
    /// is not blank and not itself cancellable (or a cancelled order could be
    /// cancelled again).
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut codes = BTreeSet::new();
        for (index, mapping) in self.status_mappings.iter().enumerate() {
            if mapping.erp_code.trim().is_empty() {
                errors.push(FieldError::new(
                    format!("statusMappings[{index}].erpCode"),
                    "must not be blank",
                ));
            } else if !codes.insert(mapping.erp_code.as_str()) {
                errors.push(FieldError::new(
                    format!("statusMappings[{index}].erpCode"),
                    format!("ERP code {:?} is mapped more than once", mapping.erp_code),
                ));
            }
            if mapping.status.trim().is_empty() {
                errors.push(FieldError::new(
                    format!("statusMappings[{index}].status"),
                    "must not be blank",
                ));
            }
        }
        let mut statuses = BTreeSet::new();
        for (index, status) in self.cancellable_statuses.iter().enumerate() {
            let field = format!("cancellableOrderStatuses[{index}]");
            if status.trim().is_empty() {
                errors.push(FieldError::new(field, "must not be blank"));
            } else if !statuses.insert(status.as_str()) {
                errors.push(FieldError::new(
                    field,
                    format!("{status:?} is listed more than once"),
                ));
            }
        }
        if self.cancelled_status.trim().is_empty() {
            errors.push(FieldError::new("cancelledStatus", "must not be blank"));
        } else if self.is_cancellable(&self.cancelled_status) {
            errors.push(FieldError::new(
                "cancelledStatus",
                format!(
                    "{:?} is cancellable by the mappings and cancellable statuses; a cancelled order must not be",
                    self.cancelled_status
                ),
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Refuses an order that may not be cancelled: its status is not
/// cancellable, or it has no active line left (it is cancelled already,
/// whatever its status says).
pub fn ensure_cancellable(order: &Order, settings: &Settings) -> Result<(), Refusal> {
    if settings.is_cancellable(&order.status) && order.lines.iter().any(|l| l.is_active()) {
        Ok(())
    } else {
        Err(Refusal::OrderNotCancellable {
            status: order.status.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(mappings: &[(&str, &str, bool)], cancellable: &[&str]) -> Settings {
        Settings {
            status_mappings: mappings
                .iter()
                .map(|&(erp_code, status, allow_cancellation)| StatusMapping {
                    erp_code: erp_code.into(),
                    status: status.into(),
                    allow_cancellation,
                })
                .collect(),
            cancellable_statuses: cancellable.iter().map(|s| (*s).into()).collect(),
            cancelled_status: "Cancelled".into(),
        }
    }

    #[test]
    fn cancellable_needs_the_list_and_the_mapping() {
        // Optimizely / InsiteCommerce seeds: "Create the mapping and select the option to
        // Allow Cancellation" and "Identify the cancellable order statuses".
        let s = settings(
            &[
                ("SUB", "Submitted", true),
                ("PRC", "Processing", false),
                ("HLD", "On hold", true),
                ("SUB2", "Submitted", false),
            ],
            &["Submitted", "Processing"],
        );
        let cases = [
            ("SUB", true),        // mapped, allowed, display status listed
            ("PRC", false),       // listed but the mapping does not allow it
            ("HLD", false),       // allowed but not listed
            ("SUB2", false),      // same display status, mapping forbids
            ("UNKNOWN", false),   // no mapping at all
            ("Submitted", false), // the display status is not an ERP code
        ];
        for (code, expected) in cases {
            assert_eq!(s.is_cancellable(code), expected, "{code}");
        }
    }

    #[test]
    fn websphere_preset_accepts_its_eight_codes_and_cancels_to_x() {
        // WebSphere seed, behaviour section: "A, B, C, I, L, M, N, or W"; "order status to X".
        let s = Preset::Websphere.settings();
        for code in ["A", "B", "C", "I", "L", "M", "N", "W"] {
            assert!(s.is_cancellable(code), "{code}");
        }
        for code in ["X", "P", "S", "D", "R", "", "a", "w"] {
            assert!(!s.is_cancellable(code), "{code}");
        }
        assert_eq!(s.cancelled_status, "X");
        assert_eq!(s.validate(), Ok(()));
    }

    #[test]
    fn insite_preset_accepts_submitted_and_cancels_to_cancelled() {
        // InsiteCommerce seed: "Enter the value of Submitted".
        let s = Preset::Insite.settings();
        assert!(s.is_cancellable("Submitted"));
        assert!(!s.is_cancellable("Cancelled"));
        assert!(!s.is_cancellable("Shipped"));
        assert_eq!(s.cancelled_status, "Cancelled");
        assert_eq!(s.validate(), Ok(()));
    }

    #[test]
    fn presets_parse_by_name() {
        assert_eq!(Preset::parse("insite"), Some(Preset::Insite));
        assert_eq!(Preset::parse("WebSphere"), Some(Preset::Websphere));
        assert_eq!(Preset::parse("sap"), None);
        for preset in Preset::ALL {
            assert_eq!(Preset::parse(preset.name()), Some(preset));
        }
    }

    #[test]
    fn website_switch_is_off_by_default() {
        // InsiteCommerce seed: AllowCancellationRequest must be set to True to enable it.
        assert!(!WebsiteSettings::default().allow_cancellation_request);
    }

    #[test]
    fn settings_validation_names_each_bad_field() {
        let mut s = settings(
            &[("A", "A", true), ("A", "Again", false), (" ", "", true)],
            &["A", "A", ""],
        );
        s.cancelled_status = "A".into();
        let fields: Vec<String> = s
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "statusMappings[1].erpCode",
                "statusMappings[2].erpCode",
                "statusMappings[2].status",
                "cancellableOrderStatuses[1]",
                "cancellableOrderStatuses[2]",
                "cancelledStatus",
            ]
        );
        s.cancelled_status = String::new();
        assert!(
            s.validate()
                .unwrap_err()
                .iter()
                .any(|e| e.field == "cancelledStatus")
        );
    }
}
