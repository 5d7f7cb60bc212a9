//! The request path: choose a cohort, apply faults, forward to a pool member, stream the
//! answer back, and count what happened.

use crate::body::{ProxyBody, RequestGuard, UpstreamResponseBody};
use crate::clock;
use crate::config::{Config, Mode, StickySource, UnhealthyPolicy, UpstreamProtocol};
use crate::h1::ResponseHead;
use crate::metrics::{ClientFailure, InternalFailure, Metrics, UpstreamFailure};
use crate::pool::{self, Flight, Http1Pool, SendError};
use crate::rng;
use crate::routing::{self, Cohort, Decision, FaultAction, RouteState, SplitMode, StickyKey};
use crate::state::InitialWeights;
use crate::upload::{ClientBody, UploadWatch, WAITING};
use crate::upstream::{Member, Pool};
use crate::users::CohortUsers;
use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{PathAndQuery, Scheme};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The header that tells the upstream which cohort a request belongs to.
pub const COHORT_HEADER: &str = "x-ramp-cohort";

/// The header on the proxy's own error answers naming the error's source and reason.
pub const ERROR_HEADER: &str = "x-ramp-error";

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_RAMP_COHORT: HeaderName = HeaderName::from_static(COHORT_HEADER);
static X_RAMP_ERROR: HeaderName = HeaderName::from_static(ERROR_HEADER);
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// The shared state of a running proxy.
pub struct Proxy {
    /// The validated configuration.
    pub config: Config,
    /// Which start of the proxy this is; its counters begin at zero with it.
    pub instance: Instance,
    /// All counters.
    pub metrics: Arc<Metrics>,
    /// The split rule and faults, swapped atomically by the admin API.
    pub route: ArcSwap<RouteState>,
    /// The stable pool (in flag mode, the one pool, also `canary`).
    pub stable: Arc<Pool>,
    /// The canary pool (in flag mode, the one pool, also `stable`).
    pub canary: Arc<Pool>,
    /// Every distinct pool, for health checks and reports (one in flag mode).
    pools: Vec<Arc<Pool>>,
    /// Per-request, sticky or flag split.
    pub mode: SplitMode,
    /// Distinct users per cohort over the statistics window, so that `/snapshot` can say how
    /// many users each side of the flag's rollout had; flag mode only (`None` otherwise).
    pub users: Option<CohortUsers>,
    /// What following etcd has done, when the configuration has `[etcd]` (`crate::follow`).
    pub follow: Option<Arc<crate::follow::FollowState>>,
    /// The client side: keep-alive connections to the upstreams.
    upstreams: Upstreams,
    /// Source of fault ids.
    pub(crate) next_fault_id: AtomicU64,
    /// Weight changes refused because their fencing token was older than the newest accepted
    /// (a `PUT /weights` answered 409, or an etcd document ignored): a deposed controller's
    /// attempts, counted so that an operator or a benchmark can see that fencing acted.
    pub(crate) weights_refused: AtomicU64,
    /// Serialises admin changes to the route (persist, then swap) so they cannot interleave.
    pub(crate) admin_lock: tokio::sync::Mutex<()>,
    /// What the graceful drain waits for: every served connection and every upgraded
    /// tunnel holds a receiver; shutdown announces the drain, waits for all of them to
    /// drop, and at the deadline tells the tunnels to close.
    pub(crate) drain: tokio::sync::watch::Sender<DrainPhase>,
}

/// Which start of the proxy a snapshot's counters belong to. Counters restart at zero with
/// every start, so a controller that sees a new `boot_id` knows that the difference from its
/// last reading is a gap (a restart), not a drop of cumulative counters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Instance {
    /// 32 lowercase hexadecimal digits, random, new at every start.
    pub boot_id: String,
    /// When this start happened, in milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
}

impl Instance {
    /// A new identity, for a proxy starting now.
    fn new() -> Self {
        Self {
            boot_id: format!("{:016x}{:016x}", rng::next_u64(), rng::next_u64()),
            started_unix_ms: clock::unix_ms(),
        }
    }
}

/// Where the proxy is in its shutdown, as connections and tunnels see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DrainPhase {
    /// Serving normally.
    Serving,
    /// Shutdown began: finish what is in flight, take nothing new.
    Draining,
    /// The drain deadline passed: tunnels still open are closed.
    Stopped,
}

/// What [`Proxy::prepare`] decided for a request.
enum Step {
    /// Answered by the proxy itself, with no upstream exchange.
    Answer(Response<ProxyBody>),
    /// To be sent upstream.
    Forward(Exchange),
}

/// A request ready for its upstream, and what its answer needs.
struct Exchange {
    /// The rewritten request.
    request: Request<ClientBody>,
    /// The `X-Forwarded-For` value still to be added (see [`Proxy::rewrite`]).
    forwarded_for: Option<HeaderValue>,
    /// The client side of an upgrade the request asks for.
    upgrade: Option<OnUpgrade>,
    /// Measures the request until its last byte leaves, and watches its upload.
    guard: RequestGuard,
    /// The cohort that serves it.
    cohort: Cohort,
    /// The member's position in the cohort's pool.
    member: usize,
    /// An injected delay to wait first, if a fault says so.
    delay: Option<std::time::Duration>,
}

impl Proxy {
    /// Builds a proxy from a configuration and the canary weight to start with, set by
    /// nobody (see [`Proxy::with_weights`] to restore who set it from the state file).
    pub fn new(config: Config, canary_bp: u32) -> Arc<Proxy> {
        Self::with_weights(
            config,
            InitialWeights {
                canary_bp,
                set_by: None,
                fence: None,
            },
        )
    }

    /// Builds a proxy from a configuration and the weights to start with and the run that
    /// set them ([`crate::state::initial_weights`]: the state file's, or the configured
    /// initial weight).
    pub fn with_weights(config: Config, weights: InitialWeights) -> Arc<Proxy> {
        let InitialWeights {
            canary_bp,
            set_by,
            fence,
        } = weights;
        let upstreams = match config.upstream_protocol {
            UpstreamProtocol::Http1 => Upstreams::Http1(Http1Pool::new(
                config.upstream_connect_timeout,
                config.upstream_response_timeout,
                config.upstream_idle_timeout,
                config.max_idle_per_upstream,
            )),
            UpstreamProtocol::H2c => {
                let mut connector = HttpConnector::new();
                connector.set_connect_timeout(Some(config.upstream_connect_timeout));
                connector.set_nodelay(true);
                connector.set_keepalive(Some(std::time::Duration::from_secs(60)));
                Upstreams::H2c(Box::new(
                    Client::builder(TokioExecutor::new())
                        .pool_idle_timeout(config.upstream_idle_timeout)
                        .pool_max_idle_per_host(config.max_idle_per_upstream)
                        .pool_timer(TokioTimer::new())
                        .timer(TokioTimer::new())
                        .set_host(false)
                        .http2_only(true)
                        .build(connector),
                ))
            }
        };
        let (mode, stable, canary, users) = match &config.mode {
            Mode::Versions => (
                match &config.sticky {
                    None => SplitMode::PerRequest,
                    Some(source) => SplitMode::Sticky {
                        key: sticky_key(source),
                        salt: config.deployment_id.as_bytes().into(),
                    },
                },
                Arc::new(Pool::new(Cohort::Stable, &config.stable)),
                Arc::new(Pool::new(Cohort::Canary, &config.canary)),
                None,
            ),
            Mode::Flag(flag) => {
                let shared = Arc::new(Pool::shared(&flag.upstream));
                let key = config.sticky.as_ref().map_or(
                    // Validation requires `[sticky]` in flag mode; a configuration changed
                    // after it falls back to the conventional header rather than failing.
                    StickyKey::Header(HeaderName::from_static("x-user-id")),
                    sticky_key,
                );
                (
                    SplitMode::Flag {
                        key,
                        salt: flag.salt.as_bytes().into(),
                    },
                    shared.clone(),
                    shared,
                    Some(CohortUsers::new(flag)),
                )
            }
        };
        let pools = if Arc::ptr_eq(&stable, &canary) {
            vec![stable.clone()]
        } else {
            vec![stable.clone(), canary.clone()]
        };
        let follow = config.etcd.as_ref().map(|etcd| {
            let key = ramp_etcd::Keys::new(&etcd.prefix, &config.deployment_id).weight();
            Arc::new(crate::follow::FollowState::new(key))
        });
        Arc::new(Proxy {
            follow,
            stable,
            canary,
            pools,
            users,
            config,
            instance: Instance::new(),
            metrics: Arc::new(Metrics::new()),
            route: ArcSwap::from_pointee(RouteState {
                canary_bp: canary_bp.min(ramp_flags::BASIS_POINTS),
                faults: Vec::new(),
                set_by: set_by.map(Arc::from),
                fence,
            }),
            mode,
            upstreams,
            next_fault_id: AtomicU64::new(1),
            weights_refused: AtomicU64::new(0),
            admin_lock: tokio::sync::Mutex::new(()),
            drain: tokio::sync::watch::channel(DrainPhase::Serving).0,
        })
    }

    /// The pool of a cohort.
    pub fn pool(&self, cohort: Cohort) -> &Pool {
        match cohort {
            Cohort::Stable => &self.stable,
            Cohort::Canary => &self.canary,
        }
    }

    /// Every distinct pool: stable and canary, or flag mode's one pool.
    pub fn pools(&self) -> &[Arc<Pool>] {
        &self.pools
    }

    /// Picks the member for a request of `cohort`, applying the unhealthy-pool policy.
    /// Returns the cohort that will actually serve it and the member's position in that
    /// cohort's pool.
    fn select(&self, cohort: Cohort) -> Result<(Cohort, usize), Cohort> {
        if let Some(member) = self.pool(cohort).pick_index() {
            return Ok((cohort, member));
        }
        if self.pools.len() == 1 {
            // Flag mode: there is no other pool to fall back to.
            return Err(cohort);
        }
        match self.config.unhealthy_policy {
            UnhealthyPolicy::Fail => Err(cohort),
            UnhealthyPolicy::Fallback => match self.pool(cohort.other()).pick_index() {
                Some(member) => {
                    self.metrics.rerouted_unhealthy();
                    Ok((cohort.other(), member))
                }
                None => Err(cohort),
            },
        }
    }

    /// Handles one client request. Never fails: every problem becomes a counted response.
    /// The request is routed and counted when this is called (see [`Proxy::handle_from`]),
    /// not when the future is first polled.
    pub fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> impl Future<Output = Result<Response<ProxyBody>, Infallible>> + Send + 'static {
        self.handle_from(req, &ClientAddr::new(peer))
    }

    /// [`Proxy::handle`] for a request of a connection whose address was prepared once.
    ///
    /// Everything that does not wait (routing, the choice of fault, the rewrite of the
    /// request) happens here, before the returned future exists; the future holds only the
    /// prepared request and what the answer needs. hyper moves each request's future into
    /// its slot before polling it, and one small flat future instead of four nested ones
    /// (handle, forward, the pool's send, hyper's send) cut the proxy's copying per request
    /// by a quarter (docs/benchmarks-proxy.md).
    pub(crate) fn handle_from(
        self: Arc<Self>,
        req: Request<Incoming>,
        client: &ClientAddr,
    ) -> impl Future<Output = Result<Response<ProxyBody>, Infallible>> + Send + 'static {
        let step = self.prepare(req, client);
        async move {
            let Exchange {
                request,
                forwarded_for,
                upgrade,
                guard,
                cohort,
                member,
                delay,
            } = match step {
                Step::Answer(response) => return Ok(response),
                Step::Forward(exchange) => exchange,
            };
            // The response deadline counts from the request's arrival (read once, in
            // `prepare`), or from the end of an injected delay: the delay is not the
            // upstream's slowness. A request with a body has it follow the upload instead
            // (see `pool` and `h2c_response_deadline`): the client's slowness is not the
            // upstream's either.
            let sent = match delay {
                None => guard.started(),
                Some(delay) => {
                    self.metrics.fault_delayed(cohort);
                    tokio::time::sleep(delay).await;
                    clock::now()
                }
            };
            let member = &self.pool(cohort).members[member];
            let added = Added {
                forwarded_for: forwarded_for.as_ref(),
                cohort,
            };
            // The HTTP/1.1 pool keeps the response deadline on the connection's watchdog (no
            // timer per request); the h2c client gets a timer around the exchange. Only the
            // common case (an idle connection that takes the request) is awaited in place;
            // connecting, retrying and h2c are boxed so that they do not widen every
            // request's future.
            let exchanged = match &self.upstreams {
                Upstreams::Http1(pool) => {
                    let flight = match pool.checkout(member, sent) {
                        Some(conn) => Ok(Flight::new(conn, request, &added.fields())),
                        None => Box::pin(pool.connect(member, sent))
                            .await
                            .map(|conn| Flight::new(conn, request, &added.fields())),
                    };
                    match flight {
                        Ok(mut flight) => {
                            match std::future::poll_fn(|cx| flight.poll_head(cx)).await {
                                Ok(head) => Ok(Answer::Http1(head, flight)),
                                Err(err) if flight.retryable(&err) => {
                                    Box::pin(pool.retry(member, sent, flight))
                                        .await
                                        .map(|(head, flight)| Answer::Http1(head, flight))
                                }
                                Err(err) => Err(err),
                            }
                        }
                        Err(err) => Err(err),
                    }
                    .map_err(UpstreamError::Pool)
                }
                Upstreams::H2c(client) => {
                    let response = client.request(added.insert_into(request));
                    let late = h2c_response_deadline(
                        guard.upload(),
                        sent,
                        self.config.upstream_response_timeout,
                    );
                    Box::pin(async {
                        tokio::select! {
                            result = response => Some(result),
                            () = late => None,
                        }
                    })
                    .await
                    .ok_or(UpstreamError::Pool(SendError::Timeout))
                    .and_then(|result| result.map(Answer::H2c).map_err(UpstreamError::Client))
                }
            };
            Ok(self.respond(exchanged, guard, upgrade, cohort, member))
        }
    }

    /// Routes a request and prepares it for its upstream, or answers it at once (a request
    /// the proxy refuses, no healthy upstream, an injected abort, a request that cannot be
    /// rewritten).
    fn prepare(&self, req: Request<Incoming>, client: &ClientAddr) -> Step {
        let start = clock::now();
        // One pass over the header fields tells which of the lookups below are needed.
        let scan = HeaderScan::of(req.headers());
        if let Some(refused) = refuse(&req, &scan) {
            // Refused before routing: the request reaches no cohort.
            self.metrics.client_error(refused);
            return Step::Answer(client_answer(refused));
        }
        let route = self.route.load();
        let (wanted, decision) = routing::choose(&self.mode, route.canary_bp, req.headers());
        if decision == Decision::StickyKeyMissing {
            self.metrics.sticky_key_missing();
        }
        if let (Some(users), SplitMode::Flag { key, .. }) = (&self.users, &self.mode) {
            if let Some(user) = routing::sticky_value(key, req.headers()) {
                users.record(user, wanted);
            }
        }
        let (cohort, member) = match self.select(wanted) {
            Ok(selected) => selected,
            Err(cohort) => {
                let guard = RequestGuard::start(self.metrics.clone(), cohort, start);
                self.metrics
                    .internal_error(InternalFailure::NoHealthyUpstream);
                return Step::Answer(self.local_error(
                    guard,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "internal/no_healthy_upstream",
                ));
            }
        };
        let guard = RequestGuard::start(self.metrics.clone(), cohort, start);

        let fault = if route.faults.is_empty() {
            None
        } else {
            routing::fault_for(&route.faults, cohort, start)
        };
        // The rule is not kept: a delayed request must not pin an old rule.
        drop(route);
        let delay = match fault {
            None => None,
            Some(FaultAction::Delay(delay)) => Some(delay),
            Some(FaultAction::Abort(status)) => {
                self.metrics.fault_aborted(cohort);
                return Step::Answer(self.local_error(guard, status, "fault/abort"));
            }
        };
        let idle = self.config.client_body_idle_timeout;
        match self.rewrite(
            req,
            &scan,
            client,
            &self.pool(cohort).members[member],
            start,
            idle,
        ) {
            Ok((request, upgrade, upload, forwarded_for)) => Step::Forward(Exchange {
                request,
                forwarded_for,
                upgrade,
                guard: {
                    let mut guard = guard;
                    guard.watch_upload(upload);
                    guard
                },
                cohort,
                member,
                delay,
            }),
            Err(()) => {
                self.metrics.internal_error(InternalFailure::RequestBuild);
                Step::Answer(self.local_error(
                    guard,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal/request_build",
                ))
            }
        }
    }

    /// Turns the client's request into the upstream's: target, `Host`, version, hop-by-hop
    /// headers, X-Forwarded-For/-Proto and the cohort header. Also returns the client side of
    /// an upgrade, if the request asks for one, and the watch of its upload (its body, which
    /// arrived at `start`, may pause at most `body_idle` at a time; see
    /// [`crate::upload`]). Fails only if the target cannot be rebuilt.
    ///
    /// The headers the proxy adds are not inserted here: inserting three fields into the
    /// client's header map often makes it grow (a rehash of every field), so the HTTP/1.1
    /// upstream gets them written straight into its request head and the h2c client gets
    /// them inserted just before sending ([`Added`]). Client-sent `X-Forwarded-Proto` and
    /// cohort headers are removed here, so the proxy's are the only ones; the common
    /// `X-Forwarded-For` (the client sent none) is returned to be added the same way, and an
    /// existing list is extended in the map.
    #[allow(clippy::type_complexity)]
    fn rewrite(
        &self,
        mut req: Request<Incoming>,
        scan: &HeaderScan,
        client: &ClientAddr,
        member: &Member,
        start: std::time::Instant,
        body_idle: std::time::Duration,
    ) -> Result<
        (
            Request<ClientBody>,
            Option<OnUpgrade>,
            Option<Arc<UploadWatch>>,
            Option<HeaderValue>,
        ),
        (),
    > {
        // HTTP/2 has no Upgrade: with an h2c upstream an upgrade request goes through as a
        // plain request (its Upgrade headers are hop-by-hop and removed).
        let upgrade = (self.config.upstream_protocol == UpstreamProtocol::Http1
            && scan.upgrade
            && is_upgrade(req.headers()))
        .then(|| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();

        let original_authority = parts.uri.authority().cloned();
        if let Some(uri) = self.upstream_uri(&parts, member) {
            parts.uri = uri.map_err(|_| ())?;
        }
        if scan.hosts == 0 {
            // HTTP/2 and absolute-form requests carry the host in the URI; HTTP/1.1 upstreams
            // need it as a header.
            if let Some(value) =
                original_authority.and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            {
                parts.headers.insert(header::HOST, value);
            }
        }
        parts.version = match self.config.upstream_protocol {
            UpstreamProtocol::Http1 => Version::HTTP_11,
            UpstreamProtocol::H2c => Version::HTTP_2,
        };
        if scan.hop_by_hop {
            remove_hop_by_hop(&mut parts.headers, upgrade.is_some());
        }
        if upgrade.is_some() {
            parts
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
        let forwarded_for = match &client.forwarded_for {
            // The common case: no list yet, and the value was formatted once per connection.
            Some(value) if !scan.forwarded_for => Some(value.clone()),
            _ => {
                add_forwarded_for(&mut parts.headers, client.peer);
                None
            }
        };
        if scan.set_by_proxy {
            parts.headers.remove(&X_FORWARDED_PROTO);
            parts.headers.remove(&X_RAMP_COHORT);
        }
        let (body, upload) = ClientBody::new(body, start, body_idle);
        Ok((
            Request::from_parts(parts, body),
            upgrade,
            upload,
            forwarded_for,
        ))
    }

    /// Turns the upstream's answer (or failure) into the client's response, counting it.
    fn respond(
        &self,
        exchanged: Result<Answer, UpstreamError>,
        mut guard: RequestGuard,
        upgrade: Option<OnUpgrade>,
        cohort: Cohort,
        member: &Member,
    ) -> Response<ProxyBody> {
        let answer = match exchanged {
            Err(err) => match classify_upstream_error(&err, guard.upload()) {
                Blame::Client(fault) => {
                    // The client stalled, broke or abandoned its request body: the upstream
                    // is not at fault, and the request records nothing in the cohort.
                    tracing::debug!(cohort = cohort.as_str(), error = %err, reason = fault.as_str(), "client request body failed");
                    guard.client_fault(fault);
                    let mut answer = client_answer(fault);
                    // The rest of the body will not be read: the connection cannot go on.
                    answer
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                    return answer;
                }
                Blame::Upstream(reason) => {
                    tracing::debug!(cohort = cohort.as_str(), upstream = %member.addr, error = %err, ?reason, "upstream request failed");
                    self.metrics.upstream_error(cohort, reason);
                    let status = match reason {
                        UpstreamFailure::Timeout => StatusCode::GATEWAY_TIMEOUT,
                        UpstreamFailure::Status5xx
                        | UpstreamFailure::Connect
                        | UpstreamFailure::Reset
                        | UpstreamFailure::BadResponse => StatusCode::BAD_GATEWAY,
                    };
                    return self.local_error(guard, status, upstream_error_label(cohort, reason));
                }
            },
            Ok(answer) => answer,
        };

        let (mut parts, body) = match answer {
            Answer::Http1(head, flight) => {
                let body = flight.into_body(&head);
                (head.parts, UpstreamResponseBody::Http1(body))
            }
            Answer::H2c(response) => {
                let (parts, body) = response.into_parts();
                (parts, UpstreamResponseBody::H2c(body))
            }
        };
        let status = parts.status;
        if status.is_server_error() {
            self.metrics
                .upstream_error(cohort, UpstreamFailure::Status5xx);
        }
        guard.respond(status);
        let tunnel = match (upgrade, body) {
            (Some(client_upgrade), UpstreamResponseBody::Http1(body))
                if status == StatusCode::SWITCHING_PROTOCOLS =>
            {
                if let Some(upstream) = body.into_upgraded() {
                    self.spawn_tunnel(client_upgrade, upstream);
                }
                None
            }
            (_, body) => Some(body),
        };
        let Some(body) = tunnel else {
            remove_hop_by_hop(&mut parts.headers, true);
            parts
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            return Response::from_parts(parts, ProxyBody::local(Bytes::new(), Some(guard)));
        };
        remove_hop_by_hop(&mut parts.headers, false);
        let body = ProxyBody::upstream(body, guard, self.config.upstream_body_idle_timeout);
        Response::from_parts(parts, body)
    }

    /// Copies bytes both ways between an upgraded client connection and its upstream (a
    /// WebSocket, say) until either side closes. The tunnel counts as in flight for the
    /// graceful drain: it holds a drain watcher, so shutdown waits for it, and it is closed
    /// when the drain deadline passes.
    fn spawn_tunnel(&self, client_upgrade: OnUpgrade, upstream: (TcpStream, Bytes)) {
        let mut drain = self.drain.subscribe();
        tokio::spawn(async move {
            let (mut upstream_io, early) = upstream;
            let client_io = match client_upgrade.await {
                Ok(client_io) => client_io,
                Err(err) => {
                    tracing::debug!(error = %err, "upgrade did not complete");
                    return;
                }
            };
            let mut client_io = TokioIo::new(client_io);
            let copy = async {
                // Bytes the upstream sent right behind its 101 head go first.
                if !early.is_empty() {
                    client_io.write_all(&early).await?;
                }
                tokio::io::copy_bidirectional(&mut client_io, &mut upstream_io).await
            };
            tokio::select! {
                _ = copy => {}
                // Err: the proxy is gone, which ends the tunnel too.
                _ = drain.wait_for(|phase| *phase == DrainPhase::Stopped) => {
                    tracing::debug!("tunnel closed at the drain deadline");
                }
            }
        });
    }

    /// The request target to send upstream, or `None` to keep the client's. HTTP/1.1
    /// upstreams get origin-form (`/path?query`; CONNECT never gets here, see [`refuse`]),
    /// built only when the client's target is not already origin-form (HTTP/2 clients and
    /// absolute-form requests); the h2c client wants the absolute URI of the member.
    fn upstream_uri(
        &self,
        parts: &http::request::Parts,
        member: &Member,
    ) -> Option<Result<Uri, http::uri::InvalidUriParts>> {
        let mut uri_parts = http::uri::Parts::default();
        let path_and_query = || {
            parts
                .uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/"))
        };
        match self.config.upstream_protocol {
            UpstreamProtocol::Http1 => {
                if parts.uri.scheme().is_none() && parts.uri.authority().is_none() {
                    return None;
                }
                uri_parts.path_and_query = Some(path_and_query());
            }
            UpstreamProtocol::H2c => {
                uri_parts.scheme = Some(Scheme::HTTP);
                uri_parts.authority = Some(member.authority.clone());
                uri_parts.path_and_query = Some(path_and_query());
            }
        }
        Some(Uri::from_parts(uri_parts))
    }

    /// The proxy's own answer for the cohort of `guard` (an upstream failure, no healthy
    /// upstream, an injected abort), counted there: a 5xx is one of the cohort's errors.
    fn local_error(
        &self,
        mut guard: RequestGuard,
        status: StatusCode,
        label: &'static str,
    ) -> Response<ProxyBody> {
        guard.respond(status);
        local_answer(status, label, Some(guard))
    }
}

/// The proxy's own answer: a short text body and the error's source and reason in
/// [`ERROR_HEADER`]; with a guard, the request is measured when it has been sent.
fn local_answer(
    status: StatusCode,
    label: &'static str,
    guard: Option<RequestGuard>,
) -> Response<ProxyBody> {
    let text = format!(
        "{} {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let mut response = Response::new(ProxyBody::local(text, guard));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(X_RAMP_ERROR.clone(), HeaderValue::from_static(label));
    response
}

/// The answer to a request the client is to blame for; it belongs to no cohort.
fn client_answer(fault: ClientFailure) -> Response<ProxyBody> {
    let (status, label) = match fault {
        ClientFailure::BadRequest => (StatusCode::BAD_REQUEST, "client/bad_request"),
        ClientFailure::HeadersTooLarge => (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "client/headers_too_large",
        ),
        ClientFailure::HeaderTimeout => (StatusCode::REQUEST_TIMEOUT, "client/header_timeout"),
        ClientFailure::Disconnected => (StatusCode::BAD_REQUEST, "client/disconnected"),
        ClientFailure::BodyTimeout => (StatusCode::REQUEST_TIMEOUT, "client/body_timeout"),
        ClientFailure::BadBody => (StatusCode::BAD_REQUEST, "client/bad_body"),
        ClientFailure::BadHost => (StatusCode::BAD_REQUEST, "client/bad_host"),
        ClientFailure::ConnectMethod => (StatusCode::BAD_REQUEST, "client/connect_method"),
        ClientFailure::H2Protocol => (StatusCode::BAD_REQUEST, "client/h2_protocol"),
    };
    local_answer(status, label, None)
}

/// Why the proxy refuses a request before routing it, if it does:
///
/// - an HTTP/1.1 request without `Host`, or an HTTP/1.x request with more than one: RFC
///   9112 §3.2 requires a 400, and forwarding would let the proxy and the upstream disagree
///   on which host was asked for;
/// - `CONNECT`: a reverse proxy does not open tunnels to arbitrary authorities, and
///   forwarding it as `CONNECT <member>` would make the member's answer a tunnel.
fn refuse(req: &Request<Incoming>, scan: &HeaderScan) -> Option<ClientFailure> {
    if req.method() == Method::CONNECT {
        return Some(ClientFailure::ConnectMethod);
    }
    let bad_host = match req.version() {
        Version::HTTP_11 => scan.hosts != 1,
        Version::HTTP_10 | Version::HTTP_09 => scan.hosts > 1,
        // HTTP/2 and later carry the authority in the request itself.
        _ => false,
    };
    bad_host.then_some(ClientFailure::BadHost)
}

/// Resolves when the response head of an h2c request is late: one response deadline after
/// the request left (`sent`), or, for a request with a body, after the body's last
/// progress, and never while the proxy waits for the client's next piece of body (the
/// client's body idle deadline bounds that wait): the rule of the HTTP/1.1 pool (see
/// `pool`), with a timer of its own since hyper's client sends the body.
async fn h2c_response_deadline(
    upload: Option<&UploadWatch>,
    sent: std::time::Instant,
    timeout: std::time::Duration,
) {
    let Some(upload) = upload else {
        return tokio::time::sleep_until(tokio::time::Instant::from_std(sent) + timeout).await;
    };
    let (sent_ms, timeout_ms) = (pool::ms_since_epoch(sent), pool::ceil_ms(timeout));
    loop {
        let progress = upload.progress_ms();
        if progress == WAITING {
            tokio::time::sleep(timeout).await;
            continue;
        }
        let due = progress.max(sent_ms).saturating_add(timeout_ms);
        let now = pool::now_ms();
        if now >= due {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(due - now)).await;
    }
}

/// Where a validated sticky source reads the key from.
fn sticky_key(source: &StickySource) -> StickyKey {
    match source {
        StickySource::Header(h) => StickyKey::Header(
            HeaderName::from_bytes(h.as_bytes()).unwrap_or(HeaderName::from_static("x-user-id")),
        ),
        StickySource::Cookie(c) => StickyKey::Cookie(c.clone()),
    }
}

fn upstream_error_label(cohort: Cohort, reason: UpstreamFailure) -> &'static str {
    match (cohort, reason) {
        (Cohort::Stable, UpstreamFailure::Status5xx) => "upstream_stable/status_5xx",
        (Cohort::Stable, UpstreamFailure::Connect) => "upstream_stable/connect",
        (Cohort::Stable, UpstreamFailure::Timeout) => "upstream_stable/timeout",
        (Cohort::Stable, UpstreamFailure::Reset) => "upstream_stable/reset",
        (Cohort::Stable, UpstreamFailure::BadResponse) => "upstream_stable/bad_response",
        (Cohort::Canary, UpstreamFailure::Status5xx) => "upstream_canary/status_5xx",
        (Cohort::Canary, UpstreamFailure::Connect) => "upstream_canary/connect",
        (Cohort::Canary, UpstreamFailure::Timeout) => "upstream_canary/timeout",
        (Cohort::Canary, UpstreamFailure::Reset) => "upstream_canary/reset",
        (Cohort::Canary, UpstreamFailure::BadResponse) => "upstream_canary/bad_response",
    }
}

/// Who is to blame for a failed upstream exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blame {
    /// The upstream failed, for this reason.
    Upstream(UpstreamFailure),
    /// The client stalled, broke or abandoned its request body.
    Client(ClientFailure),
}

/// The client side of the proxy: its own HTTP/1.1 keep-alive pool, or hyper-util's pooled
/// client for HTTP/2 prior knowledge (one multiplexed connection per member).
enum Upstreams {
    /// `upstream_protocol = "http1"`.
    Http1(Http1Pool),
    /// `upstream_protocol = "h2c"` (boxed: it is much larger than the HTTP/1.1 pool).
    H2c(Box<Client<HttpConnector, ClientBody>>),
}

/// An upstream's answer, from either client.
#[allow(
    clippy::large_enum_variant,
    reason = "the HTTP/1.1 answer is the common case; boxing it would allocate per request"
)]
enum Answer {
    /// An HTTP/1.1 response head and the exchange its body follows on.
    Http1(ResponseHead, Flight),
    /// An h2c response from hyper's client.
    H2c(Response<Incoming>),
}

/// A failed exchange with an upstream, from either client.
#[derive(Debug)]
enum UpstreamError {
    /// From the HTTP/1.1 pool.
    Pool(SendError),
    /// From the h2c client.
    Client(hyper_util::client::legacy::Error),
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamError::Pool(e) => write!(f, "{e}"),
            UpstreamError::Client(e) => write!(f, "{e}"),
        }
    }
}

/// Maps a failed exchange to who failed and why; `upload` is the request body's watch.
///
/// The client is to blame when it broke or stalled its body (the watch says how), and when
/// the upstream closed or reset the exchange while the proxy was waiting for the client's
/// next piece of body: that is an upstream giving up on a stalled upload under a
/// request-body timeout of its own shorter than `client_body_idle_ms`, and a client
/// uploading slowly to the canary must not count against it. Everything else is the
/// upstream's, and a late or malformed answer is the upstream's in any case.
fn classify_upstream_error(err: &UpstreamError, upload: Option<&UploadWatch>) -> Blame {
    if let UpstreamError::Pool(SendError::Timeout) = err {
        // The deadline passed before anything else was known, as a timer around the
        // exchange would have said; it never runs while the proxy waits for the client.
        return Blame::Upstream(UpstreamFailure::Timeout);
    }
    let Some(upload) = upload else {
        return classify_exchange_error(err);
    };
    if let Some(fault) = upload.fault() {
        return Blame::Client(fault);
    }
    match classify_exchange_error(err) {
        Blame::Upstream(UpstreamFailure::Reset) if upload.awaiting_client() => {
            Blame::Client(ClientFailure::BodyTimeout)
        }
        blame => blame,
    }
}

/// Who failed an exchange and why, from the error alone.
fn classify_exchange_error(err: &UpstreamError) -> Blame {
    let first: &(dyn std::error::Error + 'static) = match err {
        UpstreamError::Pool(pool) => {
            return match pool {
                SendError::Connect(_) => Blame::Upstream(UpstreamFailure::Connect),
                SendError::Timeout => Blame::Upstream(UpstreamFailure::Timeout),
                SendError::Parse(_) => Blame::Upstream(UpstreamFailure::BadResponse),
                SendError::ClientBody(e) => Blame::Client(e.fault()),
                SendError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    Blame::Upstream(UpstreamFailure::Timeout)
                }
                // Closed or reset before a complete response head.
                SendError::Io(_) | SendError::Closed => Blame::Upstream(UpstreamFailure::Reset),
            };
        }
        UpstreamError::Client(e) if e.is_connect() => {
            return Blame::Upstream(UpstreamFailure::Connect)
        }
        UpstreamError::Client(e) => e,
    };
    let mut source = Some(first);
    while let Some(cause) = source {
        if let Some(h) = cause.downcast_ref::<hyper::Error>() {
            // hyper's "user" errors are not the client's by themselves: a request body that
            // failed is (its upload's watch says so, see `classify_upstream_error`), but
            // `DispatchGone` is the task of an h2c connection that ended under the request,
            // which is the upstream connection going away, a reset like the others below.
            if h.is_parse() || h.is_parse_status() || h.is_parse_too_large() {
                return Blame::Upstream(UpstreamFailure::BadResponse);
            }
            if h.is_timeout() {
                return Blame::Upstream(UpstreamFailure::Timeout);
            }
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return Blame::Upstream(UpstreamFailure::Timeout);
            }
        }
        source = cause.source();
    }
    // Everything else after a successful connect is the connection being closed or reset
    // before a complete response: incomplete message, connection reset, broken pipe.
    Blame::Upstream(UpstreamFailure::Reset)
}

/// Whether a request asks for a protocol upgrade (`Connection: upgrade` and `Upgrade`).
fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE) && connection_has(headers, "upgrade")
}

fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}

/// Removes hop-by-hop headers (RFC 9110 §7.6.1): those named in `Connection`, then
/// `Connection`, `Keep-Alive`, `Proxy-Connection`, `Proxy-Authenticate`,
/// `Proxy-Authorization`, `TE`, `Trailer`, `Transfer-Encoding` (hyper re-frames the body) and
/// `Upgrade` unless the message is an upgrade being passed through.
pub fn remove_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Most messages have none: one pass over the names instead of a lookup per header.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|s| s.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .collect();
        for name in named {
            if keep_upgrade && name == header::UPGRADE {
                continue;
            }
            headers.remove(&name);
        }
        headers.remove(header::CONNECTION);
    }
    headers.remove(&KEEP_ALIVE);
    headers.remove(&PROXY_CONNECTION);
    headers.remove(header::PROXY_AUTHENTICATE);
    headers.remove(header::PROXY_AUTHORIZATION);
    headers.remove(header::TE);
    headers.remove(header::TRAILER);
    headers.remove(header::TRANSFER_ENCODING);
    if !keep_upgrade {
        headers.remove(header::UPGRADE);
    }
}

/// Whether a header is hop-by-hop by itself (not counting those a `Connection` header names,
/// which only matter when there is a `Connection` header).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TE
        || name == header::TRAILER
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name == header::PROXY_AUTHENTICATE
        || name == header::PROXY_AUTHORIZATION
        || name == KEEP_ALIVE
        || name == PROXY_CONNECTION
}

/// What one pass over a request's header fields found, so that the request path looks up
/// only the headers that are there (each lookup hashes the name).
#[derive(Debug, Default, Clone, Copy)]
struct HeaderScan {
    /// A hop-by-hop header is present: the full removal must run.
    hop_by_hop: bool,
    /// An `Upgrade` header is present: the request may be an upgrade.
    upgrade: bool,
    /// How many `Host` field lines there are (2 stands for two or more).
    hosts: u8,
    /// An `X-Forwarded-For` header is present: the client address is appended to it.
    forwarded_for: bool,
    /// An `X-Forwarded-Proto` or cohort header is present: the client's is removed, since
    /// only the proxy sets them.
    set_by_proxy: bool,
}

impl HeaderScan {
    fn of(headers: &HeaderMap) -> Self {
        let mut scan = HeaderScan::default();
        // Every field line, repeated names included, so that a second `Host` is seen.
        for (name, _) in headers.iter() {
            if name == header::HOST {
                scan.hosts = (scan.hosts + 1).min(2);
            } else if is_hop_by_hop(name) {
                scan.hop_by_hop = true;
                scan.upgrade |= name == header::UPGRADE;
            } else if name == X_FORWARDED_FOR {
                scan.forwarded_for = true;
            } else if name == X_FORWARDED_PROTO || name == X_RAMP_COHORT {
                scan.set_by_proxy = true;
            }
        }
        scan
    }
}

/// A client connection's address and its `X-Forwarded-For` value, formatted once per
/// connection rather than once per request.
#[derive(Debug)]
pub(crate) struct ClientAddr {
    /// The client's address.
    peer: SocketAddr,
    /// The canonical IP as a header value (cheap to clone: shared bytes).
    forwarded_for: Option<HeaderValue>,
}

impl ClientAddr {
    /// Prepares the address of a newly accepted connection.
    pub(crate) fn new(peer: SocketAddr) -> Self {
        let ip = peer.ip().to_canonical().to_string();
        Self {
            peer,
            forwarded_for: HeaderValue::try_from(ip).ok(),
        }
    }
}

/// The header fields the proxy adds to every forwarded request (see [`Proxy::rewrite`]).
struct Added<'a> {
    /// The client's address as a new `X-Forwarded-For`, unless the map already has the
    /// extended list.
    forwarded_for: Option<&'a HeaderValue>,
    /// The cohort, for the cohort header.
    cohort: Cohort,
}

/// The fields of [`Added`], as a slice without allocation.
struct AddedFields<'a> {
    /// Every field the proxy may add.
    fields: [(&'a HeaderName, &'a HeaderValue); 3],
    /// Where the fields to write begin.
    start: usize,
}

impl<'a> std::ops::Deref for AddedFields<'a> {
    type Target = [(&'a HeaderName, &'a HeaderValue)];

    fn deref(&self) -> &Self::Target {
        &self.fields[self.start..]
    }
}

/// `X-Forwarded-Proto`'s one value.
static PROTO_HTTP: HeaderValue = HeaderValue::from_static("http");
/// The cohort header's values.
static COHORT_STABLE: HeaderValue = HeaderValue::from_static("stable");
static COHORT_CANARY: HeaderValue = HeaderValue::from_static("canary");

impl Added<'_> {
    /// The fields in the order they are written, without allocating.
    fn fields(&self) -> AddedFields<'_> {
        let cohort = match self.cohort {
            Cohort::Stable => &COHORT_STABLE,
            Cohort::Canary => &COHORT_CANARY,
        };
        // The first slot is used only when there is an `X-Forwarded-For` to add.
        let fields = [
            (&X_FORWARDED_FOR, self.forwarded_for.unwrap_or(&PROTO_HTTP)),
            (&X_FORWARDED_PROTO, &PROTO_HTTP),
            (&X_RAMP_COHORT, cohort),
        ];
        AddedFields {
            fields,
            start: usize::from(self.forwarded_for.is_none()),
        }
    }

    /// The request with the fields inserted into its map (for the h2c client).
    fn insert_into(&self, mut request: Request<ClientBody>) -> Request<ClientBody> {
        let headers = request.headers_mut();
        for &(name, value) in self.fields().iter() {
            headers.insert(name.clone(), value.clone());
        }
        request
    }
}

fn add_forwarded_for(headers: &mut HeaderMap, peer: SocketAddr) {
    let ip = peer.ip().to_canonical();
    // Every existing line counts: a client (or a chain of proxies) may send several.
    let mut value = String::new();
    for existing in headers.get_all(&X_FORWARDED_FOR) {
        if let Ok(existing) = existing.to_str() {
            let existing = existing.trim();
            if !existing.is_empty() {
                value.push_str(existing);
                value.push_str(", ");
            }
        }
    }
    let value = format!("{value}{ip}");
    if let Ok(value) = HeaderValue::from_str(&value) {
        // One combined value: several X-Forwarded-For lines would be joined by the upstream.
        headers.remove(&X_FORWARDED_FOR);
        headers.insert(X_FORWARDED_FOR.clone(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_removed_with_those_named_in_connection() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(
            header::PROXY_AUTHORIZATION,
            HeaderValue::from_static("Basic x"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert("x-end-to-end", HeaderValue::from_static("kept"));
        remove_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(
            h.get("x-end-to-end").map(|v| v.as_bytes()),
            Some(&b"kept"[..])
        );
    }

    #[test]
    fn upgrade_is_kept_for_upgrades() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(is_upgrade(&h));
        remove_hop_by_hop(&mut h, true);
        assert_eq!(
            h.get(header::UPGRADE).map(|v| v.as_bytes()),
            Some(&b"websocket"[..])
        );
    }

    #[test]
    fn one_pass_over_the_names_finds_what_the_lookups_need() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("example"));
        h.insert("x-other", HeaderValue::from_static("1"));
        let scan = HeaderScan::of(&h);
        assert!(scan.hosts == 1 && !scan.hop_by_hop && !scan.upgrade && !scan.forwarded_for);
        h.append(header::HOST, HeaderValue::from_static("other"));
        h.append(header::HOST, HeaderValue::from_static("third"));
        assert_eq!(HeaderScan::of(&h).hosts, 2);
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("X-Forwarded-For", HeaderValue::from_static("10.0.0.1"));
        let scan = HeaderScan::of(&h);
        assert!(scan.hop_by_hop && !scan.upgrade && scan.forwarded_for);
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(HeaderScan::of(&h).upgrade);
        let mut none = HeaderMap::new();
        none.insert("x-end-to-end", HeaderValue::from_static("kept"));
        remove_hop_by_hop(&mut none, false);
        assert_eq!(none.len(), 1);
    }

    /// A request body that fails at its first poll: the one way to get a "user" error out
    /// of hyper's client on demand (hyper has no public constructor for its errors, and the
    /// user error an h2c exchange meets in practice, `DispatchGone`, comes from a dispatch
    /// task that ended).
    struct FailingBody;

    impl http_body::Body for FailingBody {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
            std::task::Poll::Ready(Some(Err(std::io::Error::other("the body failed"))))
        }
    }

    /// A "user" error of hyper's client (here a failed body; in production `DispatchGone`,
    /// when the task of an h2c connection ends under a request) says nothing about the
    /// client when the request's upload did not fail: for a request without a body it is
    /// the upstream connection that went away, a reset of the cohort.
    ///
    /// Fails on c7d83a2: every user error is the client's `disconnected`, so an h2c upstream
    /// connection that dies under bodiless requests is never charged to its cohort.
    #[tokio::test]
    async fn a_user_error_of_hypers_client_is_not_the_clients_by_itself() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
                });
            }
        });
        let client: Client<HttpConnector, FailingBody> =
            Client::builder(TokioExecutor::new()).build_http();
        let request = Request::post(format!("http://{addr}/"))
            .body(FailingBody)
            .expect("request");
        let err = tokio::time::timeout(std::time::Duration::from_secs(5), client.request(request))
            .await
            .expect("the exchange ends")
            .expect_err("the body fails");
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        let mut user = false;
        while let Some(cause) = source {
            user |= cause
                .downcast_ref::<hyper::Error>()
                .is_some_and(hyper::Error::is_user);
            source = cause.source();
        }
        assert!(user, "not a user error: {err:?}");
        assert_eq!(
            classify_upstream_error(&UpstreamError::Client(err), None),
            Blame::Upstream(UpstreamFailure::Reset)
        );
    }

    #[test]
    fn a_prepared_client_address_is_its_canonical_ip() {
        let client = ClientAddr::new("[::ffff:192.0.2.7]:1".parse().expect("addr"));
        assert_eq!(
            client.forwarded_for.as_ref().map(|v| v.as_bytes()),
            Some(&b"192.0.2.7"[..])
        );
    }

    #[test]
    fn forwarded_for_appends_the_peer() {
        let mut h = HeaderMap::new();
        let peer: SocketAddr = "10.1.2.3:5555".parse().expect("addr");
        add_forwarded_for(&mut h, peer);
        assert_eq!(
            h.get("x-forwarded-for").map(|v| v.as_bytes()),
            Some(&b"10.1.2.3"[..])
        );
        add_forwarded_for(&mut h, "[::ffff:192.0.2.7]:1".parse().expect("addr"));
        assert_eq!(
            h.get("x-forwarded-for").map(|v| v.as_bytes()),
            Some(&b"10.1.2.3, 192.0.2.7"[..])
        );
        // Several lines (a chain of proxies) become one list, in order.
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        h.append(
            "x-forwarded-for",
            HeaderValue::from_static("10.0.0.2, 10.0.0.3"),
        );
        add_forwarded_for(&mut h, peer);
        let all: Vec<_> = h.get_all("x-forwarded-for").iter().collect();
        assert_eq!(all, ["10.0.0.1, 10.0.0.2, 10.0.0.3, 10.1.2.3"]);
    }
}
