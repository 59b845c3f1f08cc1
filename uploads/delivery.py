"""What a destination (a queue, the DynamoDB mirror) tells the outbox about messages it did not
take. Shared by every destination, so the outbox knows none of them."""

from dataclasses import dataclass


@dataclass(frozen=True)
class SendFailure:
    """One message a destination did not take. `permanent`: the message itself is at fault (SQS's
    SenderFault, an item DynamoDB refuses) and will never be taken. `attempted=False`: the
    destination went down before its turn, so no attempt is counted against it."""

    reason: str
    permanent: bool = False
    attempted: bool = True


class PublishError(Exception):
    """The destination took none of the batch (unreachable, throttled, refused): retry it later."""
