//! CORS for the configured origins only. With none configured, no response
//! carries `Access-Control-Allow-*` and preflights are refused.
//!
//! actix-cors does the work for the requests CORS is about: those with an
//! `Origin`, and every `OPTIONS` (a preflight). A request without `Origin`
//! that is not a preflight (every request of a server-side client, every
//! health check) gets from actix-cors only the two headers it puts on every
//! response, `Access-Control-Expose-Headers` and `Vary`; such a request
//! goes straight through here and its response gets the same two headers,
//! without actix-cors' boxed future and checks.

use std::rc::Rc;

use actix_web::Error;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use futures_util::FutureExt as _;
use futures_util::future::{Either, LocalBoxFuture, Map};

/// The response headers a browser script may read, as
/// `Access-Control-Expose-Headers` (actix-cors is given the same list).
const EXPOSED: &str = "etag, location, link, retry-after, x-request-id, ratelimit-limit, \
                       ratelimit-remaining, ratelimit-reset";

/// What actix-cors adds to `Vary` on every response (`add_vary_header`).
const VARY: &str = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";

const EXPOSED_VALUE: HeaderValue = HeaderValue::from_static(EXPOSED);
const VARY_VALUE: HeaderValue = HeaderValue::from_static(VARY);

pub fn cors(origins: &[String]) -> Cors {
    let cors = origins
        .iter()
        .fold(actix_cors::Cors::default(), |cors, origin| {
            cors.allowed_origin(origin)
        })
        .allowed_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::ACCEPT,
            header::HeaderName::from_static("x-request-id"),
        ])
        .expose_headers(EXPOSED.split(", "))
        .max_age(3600);
    Cors(cors)
}

/// The CORS layer (see the module documentation).
pub struct Cors(actix_cors::Cors);

impl std::fmt::Debug for Cors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Cors").finish_non_exhaustive()
    }
}

/// The service inside, shared by the straight path and actix-cors.
pub struct Shared<S>(Rc<S>);

impl<S> std::fmt::Debug for Shared<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Shared").finish_non_exhaustive()
    }
}

impl<S: Service<ServiceRequest>> Service<ServiceRequest> for Shared<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&self, req: ServiceRequest) -> Self::Future {
        self.0.call(req)
    }
}

type WithCors<S> = <actix_cors::Cors as Transform<Shared<S>, ServiceRequest>>::Transform;

impl<S, B> Transform<S, ServiceRequest> for Cors
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = CorsService<S>;
    type InitError = ();
    type Future = LocalBoxFuture<'static, Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        let service = Rc::new(service);
        let with_cors = self.0.new_transform(Shared(Rc::clone(&service)));
        Box::pin(async move {
            Ok(CorsService {
                service,
                with_cors: with_cors.await?,
            })
        })
    }
}

/// The CORS layer's service: a request without `Origin` that is not a
/// preflight straight to `service`, any other through actix-cors.
pub struct CorsService<S>
where
    S: Service<ServiceRequest>,
    actix_cors::Cors: Transform<Shared<S>, ServiceRequest>,
{
    service: Rc<S>,
    with_cors: WithCors<S>,
}

impl<S> std::fmt::Debug for CorsService<S>
where
    S: Service<ServiceRequest>,
    actix_cors::Cors: Transform<Shared<S>, ServiceRequest>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CorsService").finish_non_exhaustive()
    }
}

/// The response of a request without `Origin`, with the headers actix-cors
/// would have given it.
type Straight<B> =
    fn(Result<ServiceResponse<B>, Error>) -> Result<ServiceResponse<EitherBody<B>>, Error>;

impl<S, B> Service<ServiceRequest> for CorsService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = Either<
        Map<S::Future, Straight<B>>,
        LocalBoxFuture<'static, Result<Self::Response, Self::Error>>,
    >;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        if req.method() == Method::OPTIONS || req.headers().contains_key(header::ORIGIN) {
            return Either::Right(self.with_cors.call(req));
        }
        Either::Left(
            self.service
                .call(req)
                .map(without_origin::<B> as Straight<B>),
        )
    }
}

fn without_origin<B>(
    result: Result<ServiceResponse<B>, Error>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    match result {
        Ok(mut response) => {
            every_response(response.headers_mut());
            Ok(response.map_into_left_body())
        }
        Err(mut error) => {
            error.add_response_mapper(|mut response| {
                every_response(response.headers_mut());
                response
            });
            Err(error)
        }
    }
}

/// The headers actix-cors puts on every response (`Vary` appended to, as
/// it does).
fn every_response(headers: &mut HeaderMap) {
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSED_VALUE);
    let vary = match headers.get(header::VARY) {
        Some(vary) => {
            let mut value = Vec::with_capacity(vary.len() + 2 + VARY.len());
            value.extend_from_slice(vary.as_bytes());
            value.extend_from_slice(b", ");
            value.extend_from_slice(VARY.as_bytes());
            HeaderValue::from_bytes(&value).ok()
        }
        None => Some(VARY_VALUE),
    };
    if let Some(vary) = vary {
        headers.insert(header::VARY, vary);
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::{self, TestRequest};
    use actix_web::{App, HttpResponse, web};

    use super::*;

    const ORIGIN: &str = "https://app.example";

    /// The headers of a request's response from an app behind a CORS layer
    /// (whose one route sets `Vary: Accept` when asked to).
    macro_rules! headers {
        ($cors:expr, $vary:expr, $request:expr) => {{
            let vary: bool = $vary;
            let app = test::init_service(App::new().wrap($cors).route(
                "/thing",
                web::get().to(move || async move {
                    let mut response = HttpResponse::Ok();
                    if vary {
                        response.insert_header((header::VARY, "Accept"));
                    }
                    response.finish()
                }),
            ))
            .await;
            let request: TestRequest = $request;
            test::call_service(&app, request.uri("/thing").to_request())
                .await
                .headers()
                .clone()
        }};
    }

    fn exposed(headers: &HeaderMap) -> Vec<String> {
        let value = headers
            .get(header::ACCESS_CONTROL_EXPOSE_HEADERS)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let mut names: Vec<String> = value.split(", ").map(str::to_owned).collect();
        names.sort();
        names
    }

    #[actix_web::test]
    async fn without_origin_the_headers_are_actix_cors_own() {
        let origins = [ORIGIN.to_owned()];
        for vary in [false, true] {
            let ours = headers!(cors(&origins), vary, TestRequest::get());
            let theirs = headers!(cors(&origins).0, vary, TestRequest::get());
            assert_eq!(exposed(&ours), exposed(&theirs));
            assert_eq!(exposed(&ours).len(), 8, "{ours:?}");
            assert_eq!(ours.get(header::VARY), theirs.get(header::VARY), "{vary}");
            assert!(ours.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        }
    }

    #[actix_web::test]
    async fn with_origin_or_as_a_preflight_actix_cors_answers() {
        let origins = [ORIGIN.to_owned()];
        let allowed = headers!(
            cors(&origins),
            false,
            TestRequest::get().insert_header((header::ORIGIN, ORIGIN))
        );
        assert_eq!(
            allowed
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .map(HeaderValue::as_bytes),
            Some(ORIGIN.as_bytes())
        );
        let preflight = headers!(
            cors(&origins),
            false,
            TestRequest::default()
                .method(Method::OPTIONS)
                .insert_header((header::ORIGIN, ORIGIN))
                .insert_header((header::ACCESS_CONTROL_REQUEST_METHOD, "PATCH"))
        );
        assert!(
            preflight
                .get(header::ACCESS_CONTROL_ALLOW_METHODS)
                .is_some_and(|methods| methods.to_str().unwrap_or_default().contains("PATCH")),
            "{preflight:?}"
        );
    }
}
