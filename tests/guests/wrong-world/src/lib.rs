//! Test guest `wrong-world`: a well-formed component that exports another
//! world (`other:thing/w`, `run: func() -> u32`). The host must refuse it,
//! saying it is not an integration processor.

#[allow(missing_docs, unsafe_op_in_unsafe_fn)]
mod bindings {
    wit_bindgen::generate!({
        inline: "
            package other:thing;

            world w {
                export run: func() -> u32;
            }
        ",
    });
}

/// Answers 42 to the wrong question.
pub struct Thing;

impl bindings::Guest for Thing {
    fn run() -> u32 {
        42
    }
}

#[cfg(target_arch = "wasm32")]
bindings::export!(Thing with_types_in bindings);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_natively() {
        assert_eq!(<Thing as bindings::Guest>::run(), 42);
    }
}
