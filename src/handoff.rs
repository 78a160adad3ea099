//! How a [`LoggingLayer`](crate::LoggingLayer) tells the [`ErrorHandlerLayer`](crate::ErrorHandlerLayer)
//! around it that it logged a panic or a service error.
//!
//! An error returned in a response is marked on the [`Error`](crate::Error) itself. A panic or a
//! service `Err` has no such place: the logging layer passes it on unchanged (the panic resumes
//! with its own payload) and leaves a note on this thread; the error handler, which polls the
//! logging layer's future on the same thread and in the same call, takes the note back and
//! compares it with what it caught. Both sides run on failure only.

use std::cell::RefCell;

use crate::{
    context::ErrorKind,
    error::{Error, text_of},
};

/// Put by the error handler into every response it rendered, so that a logging layer outside it
/// (too late to keep the error from being counted) can still log the error and say it is misplaced.
#[derive(Clone)]
pub(crate) struct Rendered {
    pub(crate) error: Error,
    pub(crate) kind: ErrorKind,
}

thread_local! {
    static LOGGED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Notes that the failure described by `text` was logged.
pub(crate) fn note_logged(text: String) {
    LOGGED.with(|logged| *logged.borrow_mut() = Some(text));
}

/// `error`, marked logged when the last note on this thread names it; the note is used up either
/// way.
pub(crate) fn claim(error: Error) -> Error {
    let noted = LOGGED.with(|logged| logged.borrow_mut().take());
    if noted.is_some_and(|text| text == text_of(&error)) {
        error.mark_logged();
    }
    error
}
