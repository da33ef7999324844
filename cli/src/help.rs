//! What `ferry migrate --help` (and `plan --help`) says beyond the options: an admin writes
//! the first command from it without the README.

/// Store URIs, IMAP options, where secrets come from, and the exit codes.
pub const MIGRATE: &str = "\
Store URIs (--from, --to):
  maildir:PATH                  a Maildir++ tree (Dovecot's layout)
  imaps://USER@HOST[:993]       IMAP over TLS from the first byte
  imap://USER@HOST[:143]        IMAP with STARTTLS (required)
  imap://USER@HOST/?tls=none    plaintext IMAP (warns unless the host is this machine)
  graph://TENANT/USER?client_id=APP
                                a Microsoft 365 mailbox through Microsoft Graph, as an app
                                registration (client credentials: the side's password is
                                the client secret, or a PEM with the app's certificate and
                                its key); &endpoint=URL points it at an emulator. Between
                                two tenants every item class travels whole; with a CalDAV/
                                CardDAV peer, calendars, contacts and (&auth=user: the
                                password is a user's access token) To Do tasks, converted
  dav://USER@HOST[:PORT]/PATH   a CalDAV/CardDAV account (davs:// over TLS): its calendars and
                                address books; PATH where its collections are, or none to ask
                                the server; the side's password by Basic authentication
  A user name containing @ is written %40: imaps://alice%40example.com@mail.example.com
  Never put a password in a URI: it is refused.
  --create-target-mailbox SKU creates a missing Microsoft 365 target user and licenses it.

IMAP options, in the URI's query (imaps://alice@host/?auth=xoauth2&connections=8):
  auth=plain|login|xoauth2|oauthbearer   how to log in (default: PLAIN if offered, else LOGIN;
                                          for OAuth the password is the access token)
  connections=N                  sessions per server (default 4)
  timeout=SECONDS                silence before a connection is given up (default 60)
  compress=yes|no                COMPRESS=DEFLATE (default: yes unless the server is local)
  utf8=yes|no                    UTF8=ACCEPT when the server offers it (default yes)

Secrets (never on the command line, never in logs or the journal):
  Server passwords: --from-password-file / --to-password-file, --from-password-command /
  --to-password-command (run at every login), or FERRY_FROM_PASSWORD / FERRY_TO_PASSWORD.
  Journal key: --passphrase-file or FERRY_PASSPHRASE; otherwise the key file
  ~/.config/ferry/journal.key (created on first use; back it up) or --key-file.

The journal: one per source/target pair, in ./ferry-state/journal-<hash> unless --journal
DIR is given (an empty directory is fine). Every run checks the whole journal before writing
anything; a damaged one stops the run (exit 3): `ferry journal verify` names the damage,
`ferry journal set-aside` starts a new journal that adopts what the target already holds.

Exit codes:
  0  done: every source item is on the target
  1  the run completed, but some source items are not on the target (failed, refused by the
     target, unreadable on the source): `ferry report` lists them; the next run tries again
  2  usage, configuration or local I/O problem (nothing was written)
  3  the journal is damaged or the key does not open it (the message says which)
  4  the source or the target is unreachable or unusable
  5  paused (SIGINT/SIGTERM): run the same command to resume
  6  done but for its deletions: more than the mass-deletion guard allows (at least 20, and
     over 10% of the mailbox or over 50% of a folder); `ferry plan --delete-removed` shows
     them, --confirm-deletions carries them out";
