//! The causes of a caught panic: its message, cut to its bound, whatever its payload.

use std::{error::Error as StdError, fmt};

use super::{
    BoxError,
    chain::{CUT, MAX_TEXT, cut_at},
};

/// How a response body failed after its head ([`Error::from_body`]).
pub(crate) enum BodyFailure {
    /// It yielded this error.
    Yielded(BoxError),
    /// It panicked while polled, with this message ([`panic_message`]), where the panic hook
    /// noted ([`crate::panic_location`]).
    Panicked(String, Option<super::Site>),
}

/// The cause of an error made from a caught panic: its message.
#[derive(Debug)]
pub(crate) struct Panicked {
    message: String,
    /// Whether the response body panicked, rather than the handler.
    in_body: bool,
}

impl Panicked {
    /// The cause of a panic while a response body was polled, with `message`.
    pub(crate) fn in_body(message: String) -> Self {
        Self {
            message,
            in_body: true,
        }
    }

    pub(crate) fn from_payload(payload: &(dyn std::any::Any + Send)) -> Self {
        Self {
            message: panic_message(payload),
            in_body: false,
        }
    }
}

/// A panic's message, at most [`MAX_TEXT`] bytes of it; payloads that are neither `&str` nor
/// `String` get a stand-in.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let bounded = |text: &str| {
        let mut kept = cut_at(text, MAX_TEXT).to_owned();
        if kept.len() < text.len() {
            kept.push_str(CUT);
        }
        kept
    };
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        bounded(text)
    } else if let Some(text) = payload.downcast_ref::<String>() {
        bounded(text)
    } else {
        "panic payload of a type that is not a string".to_owned()
    }
}

impl fmt::Display for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = if self.in_body {
            "response body"
        } else {
            "handler"
        };
        write!(f, "{who} panicked: {}", self.message)
    }
}

impl StdError for Panicked {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_payloads_of_any_type_get_a_message() {
        let text: Box<dyn std::any::Any + Send> = Box::new("boom");
        let string: Box<dyn std::any::Any + Send> = Box::new(String::from("bang"));
        let number: Box<dyn std::any::Any + Send> = Box::new(42_u32);
        assert_eq!(Panicked::from_payload(&*text).message, "boom");
        assert_eq!(Panicked::from_payload(&*string).message, "bang");
        assert!(
            Panicked::from_payload(&*number)
                .message
                .contains("not a string")
        );
    }
}
