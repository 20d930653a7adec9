# The SMTP receiver of hive-sim's SmtpSink: aiosmtpd's controller with the Maildir handler,
# TLS as asked, and, when a login is required, an authenticator that logs every attempt to
# `{maildir}.auth`. Prints `ready` once listening, then serves until killed.
#
# Arguments: mode (plain, starttls, smtps), port, maildir, certificate, key, user, password
# (an empty user: no login required).
import sys, ssl, threading
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword

mode, port, maildir, cert, key, user, password = sys.argv[1:8]

def authenticator(server, session, envelope, mechanism, auth_data):
    login = auth_data.login.decode() if isinstance(auth_data, LoginPassword) else "?"
    ok = isinstance(auth_data, LoginPassword) and login == user and auth_data.password.decode() == password
    with open(maildir + ".auth", "a") as log:
        log.write(f"{mechanism} {login} {'accepted' if ok else 'refused'}\n")
    return AuthResult(success=ok, handled=False)

kwargs = {}
if mode in ("starttls", "smtps"):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    if mode == "starttls":
        kwargs.update(tls_context=context, require_starttls=True)
    else:
        kwargs.update(ssl_context=context)
if user:
    kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=(mode != "plain"))
controller = Controller(Mailbox(maildir), hostname="127.0.0.1", port=int(port), **kwargs)
controller.start()
print("ready", flush=True)
threading.Event().wait()
