//! The writing connection's own small client (`docs/storage.md`, PostgreSQL, the client).
//!
//! Reads use the `postgres` crate. The writing connection sends one statement per commit
//! and waits for its answer, so the client's own work is on every commit's path. The crate
//! drives a `tokio-postgres` connection on an event loop: a statement goes to the
//! connection's task through one channel and its answer comes back through another. Measured
//! on one statement (docs/performance.md), that cost 14-18 µs of client CPU a commit, and a
//! blocking socket 7 µs; on a 2-core machine each µs of client CPU was about 2 µs of commit
//! time.
//!
//! This client speaks the protocol over a blocking socket, with `postgres-protocol` (the
//! codec and SCRAM of the `postgres` crate itself) for the messages. It does only what the
//! writer needs: the startup and password exchange (trust, cleartext, MD5, SCRAM-SHA-256),
//! simple queries whose rows come back as text, and statements prepared once and executed
//! with binary parameters. It takes its settings from the same parsed URL as the `postgres`
//! crate, and, like the rest of waygate, connects without TLS.

use std::io::{self, Read, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use postgres::config::{ChannelBinding, Host, TargetSessionAttrs};
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{IsNull, ToSql, Type};
use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::backend::{ErrorResponseBody, Message};
use postgres_protocol::message::frontend;

/// A row of a simple query: each column as text, `None` for NULL.
pub(crate) type Row = Vec<Option<String>>;

/// A connection to the server.
pub(crate) struct Wire {
    socket: Socket,
    /// Messages being built, sent in one write.
    out: BytesMut,
    /// What the server sent that is not yet read as messages.
    received: BytesMut,
    /// Why the session is over, once it is: every later operation fails with it.
    ended: Option<String>,
    /// When the login must be over (the connect timeout after it began): each of its reads
    /// waits at most until then, so a server answering a byte at a time cannot stretch it.
    login_by: Option<Instant>,
}

/// A statement prepared on a [`Wire`], with its parameters' types as the server judged them.
pub(crate) struct Prepared {
    name: String,
    types: Vec<Type>,
}

/// Why an operation failed.
#[derive(Debug)]
pub(crate) enum WireError {
    /// The server refused it and said why; the session goes on unless the error was fatal.
    Db(DbError),
    /// The session is over: the socket failed, or the server closed it or ended it with a
    /// fatal error (the text says which).
    Ended(String),
    /// Nothing was sent: a value this client cannot send as its parameter's type, or a login
    /// this client cannot make.
    Refused(String),
}

/// An error the server reported.
#[derive(Debug)]
pub(crate) struct DbError {
    pub(crate) code: SqlState,
    pub(crate) message: String,
    pub(crate) detail: Option<String>,
    /// `FATAL` or `PANIC`: the server ends the session after it.
    fatal: bool,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Db(e) => match &e.detail {
                Some(detail) => write!(f, "{}: {detail}", e.message),
                None => f.write_str(&e.message),
            },
            WireError::Ended(why) | WireError::Refused(why) => f.write_str(why),
        }
    }
}

impl WireError {
    /// Whether the session is over after it: the socket failed or closed, or the server's
    /// error was fatal.
    pub(crate) fn ended_session(&self) -> bool {
        match self {
            WireError::Db(e) => e.fatal,
            WireError::Ended(_) => true,
            WireError::Refused(_) => false,
        }
    }

    /// The server's SQLSTATE, when it answered with an error.
    pub(crate) fn code(&self) -> Option<&SqlState> {
        match self {
            WireError::Db(e) => Some(&e.code),
            _ => None,
        }
    }
}

/// The socket under a [`Wire`].
enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Socket {
    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.set_nonblocking(on),
            Socket::Unix(s) => s.set_nonblocking(on),
        }
    }

    fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => {
                s.set_read_timeout(timeout)?;
                s.set_write_timeout(timeout)
            }
            Socket::Unix(s) => {
                s.set_read_timeout(timeout)?;
                s.set_write_timeout(timeout)
            }
        }
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
        }
    }
}

impl io::Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            Socket::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What the server's answer to a query or a statement held, read up to `ReadyForQuery`.
#[derive(Default)]
struct Answer {
    /// One entry per statement that completed, with its rows.
    results: Vec<Vec<Row>>,
    /// The rows of the statement under way.
    rows: Vec<Row>,
    /// The row count of the last statement's command tag (`UPDATE 1`).
    count: u64,
    /// The parameters' types of a statement described (their OIDs).
    parameters: Option<Vec<u32>>,
}

impl Wire {
    /// Connects as `config` says: each host in turn (and each of its addresses) until one
    /// accepts the login. `config`'s `connect_timeout` bounds each connection and its login.
    pub(crate) fn connect(config: &postgres::Config) -> Result<Wire, WireError> {
        if config.get_channel_binding() == ChannelBinding::Require {
            return Err(WireError::Refused(
                "`channel_binding=require` needs TLS, and this waygate connects without it".into(),
            ));
        }
        let hosts = config.get_hosts();
        let addrs = config.get_hostaddrs();
        let ports = config.get_ports();
        let count = hosts.len().max(addrs.len());
        if count == 0 {
            return Err(WireError::Refused("the URL names no host".into()));
        }
        let mut last = None;
        for i in 0..count {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            let targets: Vec<Target> = match (addrs.get(i), hosts.get(i)) {
                (Some(ip), _) => vec![Target::Tcp(SocketAddr::new(*ip, port))],
                (None, Some(Host::Tcp(name))) => match (name.as_str(), port).to_socket_addrs() {
                    Ok(found) => found.map(Target::Tcp).collect(),
                    Err(e) => {
                        last = Some(WireError::Ended(format!("{name}: {e}")));
                        continue;
                    }
                },
                (None, Some(Host::Unix(dir))) => {
                    vec![Target::Unix(dir.join(format!(".s.PGSQL.{port}")))]
                }
                (None, None) => continue,
            };
            for target in targets {
                let attempt = target
                    .socket(config)
                    .map_err(|e| WireError::Ended(e.to_string()))
                    .and_then(|socket| Wire::start(socket, config));
                match attempt {
                    Ok(wire) => return Ok(wire),
                    // The server answered, and refused: another host would refuse as well.
                    Err(WireError::Db(e)) if !is_unavailable(&e.code) => {
                        return Err(WireError::Db(e))
                    }
                    Err(e) => last = Some(e),
                }
            }
        }
        Err(last.unwrap_or_else(|| WireError::Ended("no address to connect to".into())))
    }

    /// The startup exchange on a new socket, bounded by the connect timeout.
    fn start(socket: Socket, config: &postgres::Config) -> Result<Wire, WireError> {
        let timeout = config.get_connect_timeout().copied();
        socket
            .set_timeouts(timeout)
            .map_err(|e| WireError::Ended(e.to_string()))?;
        let mut wire = Wire {
            socket,
            out: BytesMut::with_capacity(8192),
            received: BytesMut::with_capacity(8192),
            ended: None,
            login_by: timeout.map(|t| Instant::now() + t),
        };
        // No user in the URL: the name this process runs as, as libpq and the `postgres`
        // crate take it.
        let os_user;
        let user = match config.get_user() {
            Some(user) => user,
            None => {
                os_user = whoami::username()
                    .map_err(|e| WireError::Refused(format!("the URL names no user: {e}")))?;
                &os_user
            }
        };
        let mut params = vec![("client_encoding", "UTF8"), ("user", user)];
        if let Some(db) = config.get_dbname() {
            params.push(("database", db));
        }
        if let Some(options) = config.get_options() {
            params.push(("options", options));
        }
        if let Some(name) = config.get_application_name() {
            params.push(("application_name", name));
        }
        frontend::startup_message(params, &mut wire.out).map_err(encode)?;
        wire.send()?;
        wire.login(config, user)?;
        // The server's settings and the session's key, then ReadyForQuery.
        wire.answer()?;
        if config.get_target_session_attrs() != TargetSessionAttrs::Any {
            let rows = wire.simple_query("SHOW transaction_read_only")?;
            let read_only = rows.first().and_then(|r| r.first()).and_then(|r| r.first());
            let read_only = matches!(read_only, Some(Some(v)) if v == "on");
            let wanted = config.get_target_session_attrs() == TargetSessionAttrs::ReadOnly;
            if read_only != wanted {
                return Err(WireError::Refused(match read_only {
                    true => "the server does not allow writes (target_session_attrs)".into(),
                    false => "the server allows writes, and the URL asks for one that does not \
                              (target_session_attrs)"
                        .into(),
                }));
            }
        }
        wire.login_by = None;
        wire.socket
            .set_timeouts(None)
            .map_err(|e| WireError::Ended(e.to_string()))?;
        Ok(wire)
    }

    /// The authentication exchange, up to `AuthenticationOk`.
    fn login(&mut self, config: &postgres::Config, user: &str) -> Result<(), WireError> {
        let password = || {
            config.get_password().ok_or_else(|| {
                WireError::Refused(
                    "the server asks for a password and none was given (in the URL or \
                     PGPASSWORD)"
                        .into(),
                )
            })
        };
        match self.login_message()? {
            Message::AuthenticationOk => return Ok(()),
            Message::AuthenticationCleartextPassword => {
                frontend::password_message(password()?, &mut self.out).map_err(encode)?;
            }
            Message::AuthenticationMd5Password(body) => {
                let hash = md5_hash(user.as_bytes(), password()?, body.salt());
                frontend::password_message(hash.as_bytes(), &mut self.out).map_err(encode)?;
            }
            Message::AuthenticationSasl(body) => {
                let mut mechanisms = body.mechanisms();
                let mut scram = false;
                while let Some(m) = mechanisms.next().map_err(protocol)? {
                    scram |= m == sasl::SCRAM_SHA_256;
                }
                if !scram {
                    return Err(WireError::Refused(
                        "the server offers no SASL mechanism this client has (SCRAM-SHA-256 \
                         without channel binding)"
                            .into(),
                    ));
                }
                let mut exchange =
                    sasl::ScramSha256::new(password()?, sasl::ChannelBinding::unsupported());
                frontend::sasl_initial_response(
                    sasl::SCRAM_SHA_256,
                    exchange.message(),
                    &mut self.out,
                )
                .map_err(encode)?;
                self.send()?;
                let Message::AuthenticationSaslContinue(body) = self.login_message()? else {
                    return Err(unexpected("SCRAM's first answer"));
                };
                exchange.update(body.data()).map_err(scram_failed)?;
                frontend::sasl_response(exchange.message(), &mut self.out).map_err(encode)?;
                self.send()?;
                let Message::AuthenticationSaslFinal(body) = self.login_message()? else {
                    return Err(unexpected("SCRAM's last answer"));
                };
                // The server proves it knew the password too.
                exchange.finish(body.data()).map_err(scram_failed)?;
                return match self.login_message()? {
                    Message::AuthenticationOk => Ok(()),
                    _ => Err(unexpected("the end of the login")),
                };
            }
            _ => {
                return Err(WireError::Refused(
                    "the server asks for an authentication this client does not make \
                     (it makes password, md5 and scram-sha-256)"
                        .into(),
                ))
            }
        }
        self.send()?;
        match self.login_message()? {
            Message::AuthenticationOk => Ok(()),
            _ => Err(unexpected("the end of the login")),
        }
    }

    /// The next message of the login: a refusal (a wrong password, a database that is not
    /// there) is the server's error, and the end of the session.
    fn login_message(&mut self) -> Result<Message, WireError> {
        match self.message()? {
            Message::ErrorResponse(body) => {
                let e = db_error(&body)?;
                self.ended = Some(e.message.clone());
                Err(WireError::Db(e))
            }
            message => Ok(message),
        }
    }

    /// Runs `sql` (any number of statements, in one simple query): each statement's rows, as
    /// text.
    pub(crate) fn simple_query(&mut self, sql: &str) -> Result<Vec<Vec<Row>>, WireError> {
        self.usable()?;
        self.build(|out| frontend::query(sql, out))?;
        self.send()?;
        let answer = self.answer();
        self.settle(answer).map(|a| a.results)
    }

    /// Runs `sql` for its effect.
    pub(crate) fn batch_execute(&mut self, sql: &str) -> Result<(), WireError> {
        self.simple_query(sql).map(drop)
    }

    /// Prepares `sql` on this connection as `name`.
    pub(crate) fn prepare(&mut self, name: &str, sql: &str) -> Result<Prepared, WireError> {
        self.usable()?;
        self.build(|out| {
            frontend::parse(name, sql, [], out)?;
            frontend::describe(b'S', name, out)?;
            frontend::sync(out);
            Ok(())
        })?;
        self.send()?;
        let answer = self.answer();
        let answer = self.settle(answer)?;
        let oids = answer
            .parameters
            .ok_or_else(|| unexpected("a statement described"))?;
        let types = oids
            .into_iter()
            .map(|oid| {
                Type::from_oid(oid)
                    .ok_or_else(|| WireError::Refused(format!("a parameter of unknown type {oid}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Prepared {
            name: name.to_owned(),
            types,
        })
    }

    /// Executes `statement` with `params` (binary, one per parameter, of its type): the rows
    /// its command tag counts. A statement outside a transaction commits on its own.
    pub(crate) fn execute(
        &mut self,
        statement: &Prepared,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, WireError> {
        self.usable()?;
        if params.len() != statement.types.len() {
            return Err(WireError::Refused(format!(
                "{} values for a statement of {} parameters",
                params.len(),
                statement.types.len()
            )));
        }
        let values = params.iter().zip(&statement.types);
        let bound = frontend::bind(
            "",
            &statement.name,
            [1],
            values,
            |(value, ty), buf| match value.to_sql_checked(ty, buf)? {
                IsNull::No => Ok(postgres_protocol::IsNull::No),
                IsNull::Yes => Ok(postgres_protocol::IsNull::Yes),
            },
            [1],
            &mut self.out,
        );
        if let Err(e) = bound {
            self.out.clear();
            return Err(WireError::Refused(match e {
                frontend::BindError::Conversion(e) => format!("a value cannot be sent: {e}"),
                frontend::BindError::Serialization(e) => format!("a value cannot be sent: {e}"),
            }));
        }
        self.build(|out| {
            frontend::execute("", 0, out)?;
            frontend::sync(out);
            Ok(())
        })?;
        self.send()?;
        let answer = self.answer();
        self.settle(answer).map(|a| a.count)
    }

    /// Whether the session is over, as far as this client knows.
    pub(crate) fn is_closed(&self) -> bool {
        self.ended.is_some()
    }

    /// Whether the server ended the session while the connection was idle (a restart,
    /// `pg_terminate_backend`: it says so and closes the socket), read without waiting.
    /// What else it sent meanwhile (notices, changed settings) is read and dropped.
    pub(crate) fn ended_while_idle(&mut self) -> bool {
        if self.ended.is_none() {
            if let Err(why) = self.read_waiting() {
                self.ended = Some(why);
            }
        }
        self.ended.is_some()
    }

    fn read_waiting(&mut self) -> Result<(), String> {
        let failed = |e: io::Error| e.to_string();
        self.socket.set_nonblocking(true).map_err(failed)?;
        let mut buf = [0u8; 4096];
        let read = loop {
            match self.socket.read(&mut buf) {
                Ok(0) => break Err("the server closed the connection".to_owned()),
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e.to_string()),
            }
        };
        self.socket.set_nonblocking(false).map_err(failed)?;
        while let Some(message) = Message::parse(&mut self.received).map_err(failed)? {
            match message {
                Message::ErrorResponse(body) => {
                    return Err(match db_error(&body) {
                        Ok(e) => e.message,
                        Err(e) => e.to_string(),
                    })
                }
                Message::NoticeResponse(_)
                | Message::ParameterStatus(_)
                | Message::NotificationResponse(_) => {}
                _ => return Err("the server sent a message out of turn".into()),
            }
        }
        read
    }

    fn usable(&self) -> Result<(), WireError> {
        match &self.ended {
            Some(why) => Err(WireError::Ended(why.clone())),
            None => Ok(()),
        }
    }

    /// Builds messages in `out`; nothing built stays when one cannot be.
    fn build(
        &mut self,
        messages: impl FnOnce(&mut BytesMut) -> io::Result<()>,
    ) -> Result<(), WireError> {
        messages(&mut self.out).map_err(|e| {
            self.out.clear();
            encode(e)
        })
    }

    /// An answer that found the server's messages garbled or out of turn ends the session:
    /// what follows them cannot be trusted.
    fn settle<T>(&mut self, result: Result<T, WireError>) -> Result<T, WireError> {
        if let Err(WireError::Ended(why)) = &result {
            self.ended.get_or_insert_with(|| why.clone());
        }
        result
    }

    /// Sends what is built in `out`.
    fn send(&mut self) -> Result<(), WireError> {
        let sent = self.socket.write_all(&self.out);
        self.out.clear();
        sent.map_err(|e| self.end(e.to_string()))
    }

    /// The session is over, for `why`.
    fn end(&mut self, why: String) -> WireError {
        self.ended = Some(why.clone());
        WireError::Ended(why)
    }

    /// The next message from the server, read from the socket as needed.
    fn message(&mut self) -> Result<Message, WireError> {
        loop {
            match Message::parse(&mut self.received) {
                Ok(Some(message)) => return Ok(message),
                Ok(None) => {}
                Err(e) => return Err(self.end(format!("the server's answer is garbled: {e}"))),
            }
            if let Some(by) = self.login_by {
                let left = by.saturating_duration_since(Instant::now());
                let set = match left.is_zero() {
                    true => Err(io::ErrorKind::WouldBlock.into()),
                    false => self.socket.set_timeouts(Some(left)),
                };
                if let Err(e) = set {
                    return Err(self.end(read_failed(&e)));
                }
            }
            let mut buf = [0u8; 8192];
            match self.socket.read(&mut buf) {
                Ok(0) => return Err(self.end("the server closed the connection".into())),
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.end(read_failed(&e))),
            }
        }
    }

    /// Reads the answer up to `ReadyForQuery`: the rows and counts, or the first error.
    fn answer(&mut self) -> Result<Answer, WireError> {
        let mut answer = Answer::default();
        let mut error: Option<DbError> = None;
        loop {
            let message = match self.message() {
                Ok(message) => message,
                // A fatal error is followed by the end of the session: it is the reason.
                Err(WireError::Ended(why)) => {
                    return Err(match error {
                        Some(e) => {
                            self.ended = Some(e.message.clone());
                            WireError::Db(e)
                        }
                        None => WireError::Ended(why),
                    })
                }
                Err(e) => return Err(e),
            };
            match message {
                Message::ReadyForQuery(_) => break,
                Message::DataRow(body) => {
                    let mut row = Vec::new();
                    let mut ranges = body.ranges();
                    while let Some(range) = ranges.next().map_err(protocol)? {
                        row.push(match range {
                            Some(r) => Some(
                                std::str::from_utf8(&body.buffer()[r])
                                    .map_err(|_| unexpected("text that is not UTF-8"))?
                                    .to_owned(),
                            ),
                            None => None,
                        });
                    }
                    answer.rows.push(row);
                }
                Message::CommandComplete(body) => {
                    let tag = body.tag().map_err(protocol)?;
                    answer.count = tag
                        .rsplit(' ')
                        .next()
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    answer.results.push(std::mem::take(&mut answer.rows));
                }
                Message::EmptyQueryResponse => answer.results.push(Vec::new()),
                Message::ParameterDescription(body) => {
                    answer.parameters = Some(body.parameters().collect().map_err(protocol)?);
                }
                Message::ErrorResponse(body) => {
                    let e = db_error(&body)?;
                    if e.fatal {
                        self.ended = Some(e.message.clone());
                    }
                    error.get_or_insert(e);
                }
                Message::CopyInResponse(_) | Message::CopyOutResponse(_) => {
                    return Err(self.end("the server began a COPY this client cannot take".into()))
                }
                // Row descriptions, notices, settings, the session's key, the statement's
                // steps done: nothing the writer needs.
                _ => {}
            }
        }
        match error {
            Some(e) => Err(WireError::Db(e)),
            None => Ok(answer),
        }
    }
}

impl Drop for Wire {
    /// Says goodbye, so the server's log has no "unexpected EOF" for it.
    fn drop(&mut self) {
        if self.ended.is_none() {
            self.out.clear();
            frontend::terminate(&mut self.out);
            let _ = self.socket.write_all(&self.out);
        }
    }
}

/// One address of a host of the URL.
enum Target {
    Tcp(SocketAddr),
    /// The socket's path: the directory the URL names, and `.s.PGSQL.PORT` in it.
    Unix(std::path::PathBuf),
}

impl Target {
    /// A connection to the address, within the connect timeout.
    fn socket(self, config: &postgres::Config) -> io::Result<Socket> {
        let addr = match self {
            Target::Unix(path) => return UnixStream::connect(path).map(Socket::Unix),
            Target::Tcp(addr) => addr,
        };
        let stream = match config.get_connect_timeout() {
            Some(t) => TcpStream::connect_timeout(&addr, *t),
            None => TcpStream::connect(addr),
        }?;
        stream.set_nodelay(true)?;
        let socket = socket2::SockRef::from(&stream);
        if config.get_keepalives() {
            let mut keepalive =
                socket2::TcpKeepalive::new().with_time(config.get_keepalives_idle());
            if let Some(interval) = config.get_keepalives_interval() {
                keepalive = keepalive.with_interval(interval);
            }
            if let Some(retries) = config.get_keepalives_retries() {
                keepalive = keepalive.with_retries(retries);
            }
            socket.set_tcp_keepalive(&keepalive)?;
        }
        if let Some(t) = config.get_tcp_user_timeout() {
            socket.set_tcp_user_timeout(Some(*t))?;
        }
        Ok(Socket::Tcp(stream))
    }
}

/// Whether a login refused with `code` might succeed on another host (this one is starting,
/// shutting down, or full).
fn is_unavailable(code: &SqlState) -> bool {
    *code == SqlState::CANNOT_CONNECT_NOW
        || *code == SqlState::TOO_MANY_CONNECTIONS
        || *code == SqlState::ADMIN_SHUTDOWN
}

fn db_error(body: &ErrorResponseBody) -> Result<DbError, WireError> {
    let mut fields = body.fields();
    let (mut code, mut message, mut detail, mut severity) = (None, None, None, None);
    while let Some(field) = fields.next().map_err(protocol)? {
        let value = String::from_utf8_lossy(field.value_bytes()).into_owned();
        match field.type_() {
            b'C' => code = Some(value),
            b'M' => message = Some(value),
            b'D' => detail = Some(value),
            // The severity not translated (`V`) wins over the one that may be (`S`).
            b'V' => severity = Some(value),
            b'S' if severity.is_none() => severity = Some(value),
            _ => {}
        }
    }
    let fatal = matches!(severity.as_deref(), Some("FATAL" | "PANIC"));
    Ok(DbError {
        code: SqlState::from_code(code.as_deref().unwrap_or("XX000")),
        message: message.unwrap_or_else(|| "an error without a message".into()),
        detail,
        fatal,
    })
}

/// Why a read from the server failed. Only the login has a time limit of its own (`start`
/// sets the socket's timeout), and it ends in `WouldBlock`; `TimedOut` is the kernel giving
/// up on the server at any time (keepalives, `tcp_user_timeout`, a send never acknowledged).
fn read_failed(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock => {
            "the server did not answer the login within the connect timeout".into()
        }
        _ => e.to_string(),
    }
}

fn encode(e: io::Error) -> WireError {
    WireError::Refused(format!("a message cannot be encoded: {e}"))
}

fn protocol(e: io::Error) -> WireError {
    WireError::Ended(format!("the server's answer is garbled: {e}"))
}

fn unexpected(what: &str) -> WireError {
    WireError::Ended(format!("the server answered out of turn, at {what}"))
}

fn scram_failed(e: io::Error) -> WireError {
    WireError::Refused(format!("the SCRAM exchange failed: {e}"))
}

#[cfg(all(test, feature = "testing"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testing::TestSchema;

    fn config(url: &str) -> postgres::Config {
        url.parse().unwrap()
    }

    fn connect(url: &str) -> Wire {
        Wire::connect(&config(url)).unwrap()
    }

    /// The test database's URL for `role`, with `password` in it (none when empty); `None`
    /// (printed, and a failure when the database is required) when the server has no such role.
    fn as_role(schema: &TestSchema, role: &str, password: &str) -> Option<String> {
        let mut admin = connect(schema.url());
        let found = admin
            .simple_query(&format!("SELECT 1 FROM pg_roles WHERE rolname = '{role}'"))
            .unwrap();
        if found[0].is_empty() {
            assert!(
                std::env::var_os("WAYGATE_REQUIRE_POSTGRES").is_none(),
                "no role {role} on the test server (`.ci/postgres` makes it)"
            );
            eprintln!("skipped: the test server has no role {role} (`.ci/postgres` makes it)");
            return None;
        }
        let userinfo = match password {
            "" => role.to_owned(),
            _ => format!("{role}:{password}"),
        };
        Some(
            schema
                .url()
                .replacen("://postgres@", &format!("://{userinfo}@"), 1),
        )
    }

    #[test]
    fn a_connection_timed_out_after_the_login_is_not_called_a_login_timeout() {
        // The kernel's ETIMEDOUT (keepalives or `tcp_user_timeout` giving up on a server that
        // vanished while a commit waited for its answer).
        let timed_out = read_failed(&io::Error::from_raw_os_error(110));
        assert!(!timed_out.contains("login"), "{timed_out}");
        assert!(timed_out.contains("timed out"), "{timed_out}");
        // The socket's own timeout, set only while logging in.
        let login = read_failed(&io::Error::from(io::ErrorKind::WouldBlock));
        assert!(
            login.contains("login within the connect timeout"),
            "{login}"
        );
    }

    /// A server on a local port that takes one login without a password (its answer sent a
    /// byte at a time, `trickle` apart, when that is not zero), reads one message and sends
    /// `answer` to it, then closes the connection: for what a real server does too rarely to
    /// be made to on purpose.
    fn fake_server(trickle: Duration, answer: Vec<u8>) -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let read_one = |socket: &mut TcpStream, typed: bool| {
                let mut head = vec![0u8; if typed { 5 } else { 4 }];
                socket.read_exact(&mut head).unwrap();
                let len = i32::from_be_bytes(head[head.len() - 4..].try_into().unwrap());
                let mut body = vec![0u8; usize::try_from(len).unwrap() - 4];
                socket.read_exact(&mut body).unwrap();
            };
            read_one(&mut socket, false);
            // AuthenticationOk, ReadyForQuery (idle).
            let login = b"R\0\0\0\x08\0\0\0\0Z\0\0\0\x05I";
            if trickle.is_zero() {
                socket.write_all(login).unwrap();
            } else {
                for byte in login {
                    std::thread::sleep(trickle);
                    if socket.write_all(&[*byte]).is_err() {
                        return;
                    }
                }
            }
            read_one(&mut socket, true);
            socket.write_all(&answer).unwrap();
        });
        port
    }

    /// An `ErrorResponse` of `severity`, `code` and `message`.
    fn error_response(severity: &str, code: &str, message: &str) -> Vec<u8> {
        let mut fields = Vec::new();
        for (field, value) in [
            (b'S', severity),
            (b'V', severity),
            (b'C', code),
            (b'M', message),
        ] {
            fields.push(field);
            fields.extend_from_slice(value.as_bytes());
            fields.push(0);
        }
        fields.push(0);
        let mut message = vec![b'E'];
        message.extend_from_slice(&(i32::try_from(fields.len()).unwrap() + 4).to_be_bytes());
        message.extend_from_slice(&fields);
        message
    }

    #[test]
    fn a_login_answered_a_byte_at_a_time_ends_at_the_connect_timeout() {
        // Each byte comes well within the timeout; the whole login would take 4.2 s.
        let port = fake_server(Duration::from_millis(300), Vec::new());
        let began = std::time::Instant::now();
        match Wire::connect(&config(&format!(
            "host=127.0.0.1 port={port} user=postgres dbname=waygate_test connect_timeout=1"
        ))) {
            Err(WireError::Ended(why)) => assert!(why.contains("connect timeout"), "{why}"),
            other => panic!("expected the login to time out, got {:?}", other.err()),
        }
        assert!(
            began.elapsed() < Duration::from_secs(2),
            "{:?}",
            began.elapsed()
        );
    }

    #[test]
    fn a_fatal_error_in_answer_to_commit_is_a_lost_session_whose_commit_may_have_been_recorded() {
        // PostgreSQL ends the session with a PANIC when the WAL cannot be made durable (a
        // failed fsync): its code is neither of class 08 nor 57P, and the commit may be on disk.
        let port = fake_server(
            Duration::ZERO,
            error_response(
                "PANIC",
                "58030",
                "could not fsync file \"pg_wal/000000010000000000000001\": Input/output error",
            ),
        );
        let mut wire = connect(&format!(
            "host=127.0.0.1 port={port} user=postgres dbname=waygate_test"
        ));
        let e = wire.batch_execute("COMMIT").unwrap_err();
        assert!(matches!(&e, WireError::Db(db) if db.fatal), "{e:?}");
        assert!(wire.is_closed());
        assert!(crate::connect::is_lost(&e), "{e:?}");
        let failed = crate::connect::failed("db", &e, crate::connect::Write::Committing);
        assert!(
            failed
                .to_string()
                .contains("may or may not have been recorded"),
            "{failed}"
        );
    }

    #[test]
    fn each_way_of_giving_a_password_logs_in_and_a_wrong_one_is_the_servers_refusal() {
        let Some(schema) = TestSchema::new() else {
            return;
        };
        for (role, password) in [
            ("waygate_scram", "waygate-scram-test"),
            ("waygate_md5", "waygate-md5-test"),
            ("waygate_password", "waygate-password-test"),
        ] {
            let Some(url) = as_role(&schema, role, password) else {
                return;
            };
            let mut wire = connect(&url);
            let rows = wire.simple_query("SELECT current_user").unwrap();
            assert_eq!(rows, vec![vec![vec![Some(role.to_owned())]]]);
            let wrong = as_role(&schema, role, "not-the-password").unwrap();
            match Wire::connect(&config(&wrong)) {
                Err(WireError::Db(e)) => {
                    assert_eq!(e.code, SqlState::INVALID_PASSWORD, "{role}: {}", e.message);
                    assert!(
                        e.message.contains("password authentication failed"),
                        "{role}"
                    );
                }
                other => panic!(
                    "{role}: expected the server's refusal, got {:?}",
                    other.err()
                ),
            }
            let without = as_role(&schema, role, "").unwrap();
            match Wire::connect(&config(&without)) {
                Err(WireError::Refused(why)) => assert!(why.contains("none was given"), "{why}"),
                other => panic!("{role}: expected no password, got {:?}", other.err()),
            }
        }
    }

    #[test]
    fn answers_come_back_statement_by_statement_and_an_error_leaves_the_session_in_step() {
        let Some(schema) = TestSchema::new() else {
            return;
        };
        let mut wire = connect(schema.url());
        let rows = wire
            .simple_query("SELECT 1, NULL::text, 'a''b\u{e9}'; SELECT 2 WHERE false; SET x.y = 'z'")
            .unwrap();
        let text = |s: &str| Some(s.to_owned());
        assert_eq!(
            rows,
            vec![
                vec![vec![text("1"), None, text("a'b\u{e9}")]],
                vec![],
                vec![]
            ]
        );
        // An error in the middle of a query ends that query only.
        match wire.simple_query("SELECT 1; SELECT 1/0; SELECT 2") {
            Err(WireError::Db(e)) => assert_eq!(e.code, SqlState::DIVISION_BY_ZERO),
            other => panic!("expected division by zero, got {other:?}"),
        }
        assert_eq!(wire.simple_query("SELECT 3").unwrap()[0][0][0], text("3"));
        // Notices and warnings on the way are passed over.
        wire.batch_execute(
            "DO $$BEGIN RAISE NOTICE 'a notice'; RAISE WARNING 'a warning'; END$$; \
             CREATE TABLE t (id bigint PRIMARY KEY, v text, ok bool)",
        )
        .unwrap();
        match wire.prepare("bad", "SELEC 1") {
            Err(WireError::Db(e)) => assert_eq!(e.code, SqlState::SYNTAX_ERROR),
            other => panic!("expected a syntax error, got {:?}", other.err()),
        }
        let insert = wire
            .prepare(
                "ins",
                "INSERT INTO t VALUES ($1::bigint, $2::text, $3::bool)",
            )
            .unwrap();
        assert_eq!(insert.types, [Type::INT8, Type::TEXT, Type::BOOL]);
        assert_eq!(wire.execute(&insert, &[&1i64, &"x", &true]).unwrap(), 1);
        match wire.execute(&insert, &[&1i64, &"x", &true]) {
            Err(WireError::Db(e)) => {
                assert_eq!(e.code, SqlState::UNIQUE_VIOLATION);
                assert!(e.detail.is_some_and(|d| d.contains("(id)=(1)")));
            }
            other => panic!("expected a unique violation, got {other:?}"),
        }
        // Values the statement cannot take are refused before anything is sent.
        for refused in [
            wire.execute(&insert, &[&2i64, &"x"]),
            wire.execute(&insert, &[&"2", &"x", &true]),
        ] {
            assert!(matches!(refused, Err(WireError::Refused(_))), "{refused:?}");
        }
        let none: Option<&str> = None;
        assert_eq!(wire.execute(&insert, &[&2i64, &none, &false]).unwrap(), 1);
        let rows = wire
            .simple_query("SELECT id, v, ok FROM t ORDER BY id")
            .unwrap();
        assert_eq!(
            rows[0],
            vec![
                vec![text("1"), text("x"), text("t")],
                vec![text("2"), None, text("f")]
            ]
        );
        assert!(!wire.ended_while_idle());
    }

    #[test]
    fn a_session_the_server_ended_while_idle_is_seen_and_says_why() {
        let Some(schema) = TestSchema::new() else {
            return;
        };
        let name = format!("wire_{}", schema.name());
        let mut wire = connect(&format!("{}&application_name={name}", schema.url()));
        wire.simple_query("SELECT 1").unwrap();
        let mut admin = connect(schema.url());
        admin
            .simple_query(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = '{name}'"
            ))
            .unwrap();
        // `pg_terminate_backend` only signals: the session says so when it ends.
        let ended = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(25));
            wire.ended_while_idle()
        });
        assert!(ended, "the end of the session was not seen within 5 s");
        assert!(wire.is_closed());
        match wire.simple_query("SELECT 1") {
            Err(WireError::Ended(why)) => {
                assert!(why.contains("administrator command"), "{why}")
            }
            other => panic!("expected the end of the session, got {other:?}"),
        }
    }

    #[test]
    fn hosts_are_tried_in_turn_and_a_unix_socket_is_reached() {
        let Some(schema) = TestSchema::new() else {
            return;
        };
        let port = config(schema.url()).get_ports()[0];
        // A port nobody listens on: taken from the kernel, then let go.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut wire = connect(&format!(
            "host=127.0.0.1,127.0.0.1 port={closed},{port} user=postgres dbname=waygate_test"
        ));
        assert_eq!(
            wire.simple_query("SELECT 1").unwrap()[0][0][0].as_deref(),
            Some("1")
        );
        match Wire::connect(&config(&format!(
            "host=127.0.0.1 port={closed} user=postgres dbname=waygate_test connect_timeout=2"
        ))) {
            Err(WireError::Ended(why)) => assert!(why.contains("refused"), "{why}"),
            other => panic!("expected a refused connection, got {:?}", other.err()),
        }
        // A server that takes the connection and never answers: the login's time is bounded.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let silent_port = silent.local_addr().unwrap().port();
        match Wire::connect(&config(&format!(
            "host=127.0.0.1 port={silent_port} user=postgres dbname=waygate_test connect_timeout=1"
        ))) {
            Err(WireError::Ended(why)) => assert!(why.contains("connect timeout"), "{why}"),
            other => panic!("expected the login to time out, got {:?}", other.err()),
        }
        drop(silent);
        let Ok(dir) = std::env::var("WAYGATE_TEST_POSTGRES_DIR") else {
            eprintln!("skipped the unix socket: WAYGATE_TEST_POSTGRES_DIR is not set");
            return;
        };
        let mut wire = connect(&format!(
            "host={dir} port={port} user=postgres dbname=waygate_test"
        ));
        let rows = wire
            .simple_query("SELECT inet_client_addr() IS NULL")
            .unwrap();
        assert_eq!(
            rows[0][0][0].as_deref(),
            Some("t"),
            "a unix socket has no address"
        );
    }
}
