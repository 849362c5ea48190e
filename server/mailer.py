"""Sending plancast's emails (sign-in codes, invites) over SMTP.

One message per connection: these are rare, and a connection kept open would need
keep-alive handling for nothing. The SMTP password never reaches a log or an error:
failures are reported by their kind only.
"""

from __future__ import annotations

import logging
import ssl
from email.message import EmailMessage

import aiosmtplib

from plancast.server.config import Settings
from plancast.shared import ErrorCode, PlancastError

logger = logging.getLogger("plancast.server.mail")

SEND_TIMEOUT_S = 20.0


class MailFailed(PlancastError):
    code = ErrorCode.EMAIL_FAILED


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def send(self, to: str, subject: str, body: str) -> None:
        """Send one plain-text email.

        Raises:
            MailFailed: the SMTP server could not be reached or refused the message.
        """
        s = self._settings
        message = EmailMessage()
        message["From"] = s.smtp_from
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        try:
            await aiosmtplib.send(
                message,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username or None,
                password=s.smtp_password or None,
                use_tls=s.smtp_security == "tls",
                start_tls=True if s.smtp_security == "starttls" else False,
                tls_context=ssl.create_default_context(),
                timeout=SEND_TIMEOUT_S,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            logger.warning("could not send an email: %s", type(exc).__name__)
            raise MailFailed(
                "the email could not be sent; try again later or ask the server's admin"
            ) from None
