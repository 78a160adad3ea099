//! The logging layer's part for gRPC calls: a call's status is in its headers or in the trailers
//! that end its body, and its span is an RPC span ([`span::close_rpc`]).

use axum::http::{HeaderMap, StatusCode};
use tracing::Span;

use super::{outcome::Outcome, span};
use crate::{grpc, handoff::Failure};

impl Outcome {
    /// Whether the request is a gRPC call (known only when something is logged).
    pub(crate) fn is_grpc(&self) -> bool {
        self.started
            .as_ref()
            .is_some_and(|(_, head)| head.is_grpc())
    }

    /// Whether the response of the gRPC call was a gRPC answer (`content-type: application/grpc`).
    pub(crate) fn grpc_answer(&self) -> bool {
        self.started
            .as_ref()
            .is_some_and(|(_, head)| head.grpc_answer())
    }

    /// The `grpc-status` in `headers`, for a gRPC answer.
    pub(super) fn grpc_code(&self, headers: &HeaderMap) -> Option<u32> {
        self.grpc_answer().then(|| grpc::code_in(headers)).flatten()
    }

    /// Records the end of a gRPC call in its span.
    pub(super) fn close_rpc(&self, span: &Span, served: bool, code: Option<u32>) {
        if let Some((_, head)) = &self.started {
            span::close_rpc(span, head.path(), served, code);
        }
    }

    /// Logs the end of a gRPC call by the trailers its body ended with: a failure when their
    /// status is a server error (and a note for the error handler that it was logged), else a
    /// success.
    pub(crate) fn grpc_trailers(&self, span: &Span, status: StatusCode, trailers: &HeaderMap) {
        let code = grpc::code_in(trailers);
        self.close_rpc(span, true, code);
        if let Some(error) = grpc::failure_in(status, trailers, None) {
            let kind = error.returned_kind();
            let text = error.chain_text();
            let logged = self.failed(span, kind, Some(status), &text, code, Some(&error));
            self.hand_over(Failure::Body, logged);
            return;
        }
        span::close(span, status);
        self.succeeded(span, status, "request completed", code);
    }
}
