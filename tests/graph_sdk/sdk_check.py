#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Drive the Graph emulator with Microsoft's own Graph SDK for Python.

Usage:
    sdk_check.py ROOT TENANT CLIENT_ID SECRET_FILE CA_PEM|- USER_UPN

ROOT is the emulator's root URL (e.g. https://127.0.0.1:18443); the token
authority is ROOT/TENANT and Graph is ROOT/v1.0. ROOT must be https:
azure-identity refuses an http authority. The client secret is read from
SECRET_FILE (never from argv). CA_PEM is the PEM file to trust for the
emulator's certificate, or "-" for the system's default trust.

Everything goes through msgraph's GraphServiceClient and azure-identity's
async ClientSecretCredential. Prints one JSON object on one line; any
unexpected exception propagates and the process exits non-zero.

"workarounds" in the output lists each place where the server refused what
the SDK sends as it stands (and Graph accepts) and the script had to retry
another way; against a faithful server it is empty.
"""

import asyncio
import json
import ssl
import sys
import time
from importlib.metadata import version

import httpx
from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.followup_flag import FollowupFlag
from msgraph.generated.models.followup_flag_status import FollowupFlagStatus
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.mail_folder import MailFolder
from msgraph.generated.models.message import Message
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.models.single_value_legacy_extended_property import (
    SingleValueLegacyExtendedProperty,
)
from msgraph.generated.users.item.mail_folders.item.messages.messages_request_builder import (
    MessagesRequestBuilder,
)
from msgraph.generated.users.item.mail_folders.mail_folders_request_builder import (
    MailFoldersRequestBuilder,
)
from msgraph.generated.users.item.messages.item.move.move_post_request_body import (
    MovePostRequestBody,
)
from msgraph_core import GraphClientFactory
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem
from msgraph_core.tasks.page_iterator import PageIterator

GRAPH_SCOPES = ["https://graph.microsoft.com/.default"]
MESSAGES_TO_CREATE = 7
LIST_PAGE_SIZE = 3
DELTA_PAGE_SIZE = 2
CATEGORY = "SDK Check"
CHILD_NAME = "SDK Child"
MISSING_MESSAGE_ID = "AAMkAGI2THISDOESNOTEXIST00000000000000000000="


def read_secret(path):
    with open(path, encoding="utf-8") as f:
        secret = f.read().strip()
    if not secret:
        raise ValueError(f"secret file {path} is empty")
    return secret


def build_client(root, tenant, client_id, secret, ca_pem):
    """A GraphServiceClient whose token authority and Graph base are the emulator."""
    if ca_pem == "-":
        ssl_ctx = ssl.create_default_context()
        credential = ClientSecretCredential(tenant, client_id, secret, authority=root)
    else:
        ssl_ctx = ssl.create_default_context(cafile=ca_pem)
        credential = ClientSecretCredential(
            tenant, client_id, secret, authority=root, connection_verify=ca_pem
        )
    auth = AzureIdentityAuthenticationProvider(credential, scopes=GRAPH_SCOPES)
    # Same timeouts and HTTP/2 as kiota's default client, but trusting our CA.
    http = httpx.AsyncClient(
        verify=ssl_ctx,
        http2=True,
        timeout=httpx.Timeout(100.0, connect=30.0),
    )
    http = GraphClientFactory.create_with_default_middleware(client=http)
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = root + "/v1.0"
    return credential, http, GraphServiceClient(request_adapter=adapter)


async def list_top_folders(user):
    """Top-level folders with a small $top, following @odata.nextLink via PageIterator."""
    config = RequestConfiguration(
        query_parameters=MailFoldersRequestBuilder.MailFoldersRequestBuilderGetQueryParameters(
            top=LIST_PAGE_SIZE
        )
    )
    first = await user.mail_folders.get(request_configuration=config)
    names = []
    pages = 1
    it = PageIterator(first, user.request_adapter)
    while True:
        it.enumerate(lambda f: names.append(f.display_name) or True)
        nxt = await it.next()
        if nxt is None:
            break
        pages += 1
        it.current_page = nxt
        it.pause_index = 0
    return names, pages


async def create_messages(inbox, upn):
    ids = []
    for i in range(MESSAGES_TO_CREATE):
        msg = Message(
            subject=f"SDK message {i}",
            body=ItemBody(content_type=BodyType.Text, content=f"Body of SDK message {i}.\n"),
            from_=Recipient(email_address=EmailAddress(address="sender@example.test", name="Sender")),
            to_recipients=[Recipient(email_address=EmailAddress(address=upn))],
            categories=[CATEGORY],
            single_value_extended_properties=[
                # PR_MESSAGE_FLAGS = MSGFLAG_READ: a received, non-draft message.
                SingleValueLegacyExtendedProperty(id="Integer 0x0E07", value="1"),
            ],
        )
        created = await inbox.messages.post(msg)
        ids.append(created.id)
    return ids


async def list_messages(inbox):
    """$top/$select listing, following @odata.nextLink with with_url()."""
    config = RequestConfiguration(
        query_parameters=MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
            top=LIST_PAGE_SIZE, select=["subject", "isRead", "isDraft", "categories"]
        )
    )
    page = await inbox.messages.get(request_configuration=config)
    seen = []
    followed = 0
    while True:
        seen.extend(page.value or [])
        if not page.odata_next_link:
            break
        followed += 1
        page = await inbox.messages.with_url(page.odata_next_link).get()
    drafts = sum(1 for m in seen if m.is_draft)
    with_category = sum(1 for m in seen if CATEGORY in (m.categories or []))
    return len(seen), followed, drafts, with_category


def delta_config():
    config = RequestConfiguration()
    config.headers.add("Prefer", f"odata.maxpagesize={DELTA_PAGE_SIZE}")
    return config


async def first_delta_page(delta_builder, workarounds):
    """The SDK's own first delta request (GET .../messages/delta()).

    Graph takes the OData function-call form with parentheses, which is what the
    SDK sends. Should the server answer 404 to it, the same request is retried
    without the parentheses and the workaround is recorded in the output."""
    try:
        return await delta_builder.get(request_configuration=delta_config())
    except ODataError as e:
        if e.response_status_code != 404:
            raise
        url = delta_builder.to_get_request_information().url
        if "/delta()" not in url:
            raise
        workarounds.append("GET .../messages/delta() answered 404; retried as .../messages/delta")
        return await delta_builder.with_url(url.replace("/delta()", "/delta", 1)).get(
            request_configuration=delta_config()
        )


async def delta_round(delta_builder, workarounds, link=None):
    """One delta round: follow nextLinks to the deltaLink.

    Returns (changed ids, removed ids with reasons, pages, deltaLink)."""
    if link is None:
        page = await first_delta_page(delta_builder, workarounds)
    else:
        page = await delta_builder.with_url(link).get(request_configuration=delta_config())
    changed, removed, pages = [], {}, 1
    while True:
        for item in page.value or []:
            extra = item.additional_data or {}
            if "@removed" in extra:
                reason = extra["@removed"]
                removed[item.id] = reason.get("reason") if isinstance(reason, dict) else reason
            else:
                changed.append(item.id)
        if page.odata_next_link:
            pages += 1
            page = await delta_builder.with_url(page.odata_next_link).get(
                request_configuration=delta_config()
            )
            continue
        if not page.odata_delta_link:
            raise RuntimeError("delta round ended with neither nextLink nor deltaLink")
        return changed, removed, pages, page.odata_delta_link


async def move_message(user, message_id, folder_id, workarounds):
    """POST /messages/{id}/move through the SDK.

    The SDK writes the action parameter as "DestinationId" (as Graph's metadata
    spells it); Graph takes it. Should the server answer 404 about destinationId,
    the body is sent again spelled "destinationId" and the workaround recorded."""
    move = user.messages.by_message_id(message_id).move
    try:
        return await move.post(MovePostRequestBody(destination_id=folder_id))
    except ODataError as e:
        if e.response_status_code not in (400, 404) or "destinationid" not in str(e).lower():
            raise
        workarounds.append(
            'POST .../move with {"DestinationId": ...} answered %d; retried as {"destinationId": ...}'
            % e.response_status_code
        )
        return await move.post(MovePostRequestBody(additional_data={"destinationId": folder_id}))


async def run(root, tenant, client_id, secret_file, ca_pem, upn):
    started = time.monotonic()
    credential, http, client = build_client(
        root, tenant, client_id, read_secret(secret_file), ca_pem
    )
    workarounds = []
    try:
        user = client.users.by_user_id(upn)

        # 1. Users, folders, a child folder.
        users = await client.users.get()
        top_folders, folder_pages = await list_top_folders(user)
        inbox = user.mail_folders.by_mail_folder_id("inbox")
        child = await inbox.child_folders.post(MailFolder(display_name=CHILD_NAME))
        children = await inbox.child_folders.get()
        child_names = [f.display_name for f in children.value or []]

        # 2. Create and list messages.
        created = await create_messages(inbox, upn)
        listed, pages_followed, drafts, with_category = await list_messages(inbox)

        # 3. Delta: a first full round, three changes, then the deltaLink.
        delta = inbox.messages.delta
        first_changed, first_removed, first_pages, delta_link = await delta_round(delta, workarounds)
        patched, moved, deleted = created[0], created[1], created[2]
        await user.messages.by_message_id(patched).patch(
            Message(is_read=False, flag=FollowupFlag(flag_status=FollowupFlagStatus.Flagged))
        )
        moved_to = await move_message(user, moved, child.id, workarounds)
        await user.messages.by_message_id(deleted).delete()
        changed, removed, second_pages, _ = await delta_round(delta, workarounds, delta_link)

        # 4. $batch with three GETs, one of which is a 404.
        batch = BatchRequestContent()
        graph_base = client.request_adapter.base_url
        for request_id, builder in (
            ("message", user.messages.by_message_id(patched)),
            ("folder", user.mail_folders.by_mail_folder_id(child.id)),
            ("missing", user.messages.by_message_id(MISSING_MESSAGE_ID)),
        ):
            item = BatchRequestItem(builder.to_get_request_information(), id=request_id)
            # msgraph-core keeps the absolute URL in a batch item once the
            # adapter has filled in the base URL (its set_url() cannot strip
            # it either); Graph wants URLs relative to the version, so strip
            # the base here, as the SDK's users have to.
            if item.url.startswith(graph_base):
                item.url = item.url[len(graph_base):]
            batch.add_request(request_id, item)
        batch_response = await client.batch.post(batch)
        batch_status = {k: v for k, v in sorted(batch_response.get_response_status_codes().items())}

        return {
            "users": len(users.value or []),
            "top_folders": top_folders,
            "folder_pages": folder_pages,
            "child_folders": child_names,
            "created": len(created),
            "listed_messages": listed,
            "listed_drafts": drafts,
            "listed_with_category": with_category,
            "pages_followed": pages_followed,
            "delta_first_round": len(first_changed),
            "delta_first_removed": len(first_removed),
            "delta_first_pages": first_pages,
            "delta_changed": changed,
            "delta_removed": sorted(removed),
            "delta_removed_reasons": removed,
            "delta_second_pages": second_pages,
            "actions": {"patched": patched, "moved": moved, "moved_new_id": moved_to.id, "deleted": deleted},
            "batch": batch_status,
            "workarounds": workarounds,
            "sdk_version": version("msgraph-sdk"),
            "core_version": version("msgraph-core"),
            "identity_version": version("azure-identity"),
            "seconds": round(time.monotonic() - started, 3),
        }
    finally:
        await http.aclose()
        await credential.close()


def main(argv):
    if len(argv) != 7:
        sys.stderr.write(__doc__)
        return 2
    root = argv[1].rstrip("/")
    result = asyncio.run(run(root, *argv[2:7]))
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
