"""The refunds example through Django's test client, against the gateway emulator.

"Workers": each request of a test is served by a fresh client built from the same settings
(``reset_client()`` between requests does what a new worker process does), so nothing but
the database carries the conversation from one request to the next.

Run: ``python manage.py test refunds`` (from examples/django_refunds).
"""

from __future__ import annotations

import hashlib
from django.test import Client, TransactionTestCase, override_settings

from genesys_gateway.contrib.django import get_client, reset_client
from genesys_gateway.testing import GatewayEmulator, reply, tool_call

from . import tools


class RefundsTest(TransactionTestCase):
    emulator: GatewayEmulator

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.emulator = GatewayEmulator().start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.emulator.close()
        super().tearDownClass()

    def setUp(self) -> None:
        self.emulator.reset()
        tools.REFUNDS.clear()
        gateway = {"BASE_URL": self.emulator.url, "ACCESS_TOKEN": self.emulator.issue_token(),
                   "TOOLS": "refunds.tools:registry"}
        overridden = override_settings(GENESYS_GATEWAY=gateway)
        overridden.enable()
        self.addCleanup(overridden.disable)
        self.addCleanup(reset_client)
        self.clients: list[object] = []

    def request(self, method: str, url: str, body: object = None) -> tuple[int, dict]:
        """One request, served by a new worker."""
        reset_client()
        http = Client()
        if method == "GET":
            response = http.get(url)
        else:
            response = http.post(url, body, content_type="application/json")
        self.clients.append(get_client())
        return response.status_code, response.json()

    def ask_for_a_refund(self) -> dict:
        self.emulator.script(reply(tool_calls=[
            tool_call("get_order", {"order": 7}, id="call_1"),
            tool_call("refund", {"order": 7, "amount": 5}, id="call_2")]))
        status, answer = self.request("POST", "/conversations/t-1/messages",
                                      {"text": "Please refund 5 on order 7"})
        self.assertEqual(status, 200)
        return answer

    def test_a_refund_waits_for_approval_then_runs_once_in_another_worker(self) -> None:
        answer = self.ask_for_a_refund()
        self.assertEqual(answer["stop_reason"], "approval_required")
        self.assertEqual(answer["pending"], [{"call_id": "call_2", "tool": "refund",
                                              "arguments": {"order": 7, "amount": 5}}])
        self.assertEqual(tools.REFUNDS, {})
        self.emulator.script(reply("Done: 5 refunded on order 7."))
        status, answer = self.request("POST", "/conversations/t-1/decisions",
                                      {"approve": ["call_2"]})
        self.assertEqual((status, answer["stop_reason"], answer["content"], answer["version"]),
                         (200, "completed", "Done: 5 refunded on order 7.", 2))
        key = hashlib.sha256(b"t-1\0call_2").hexdigest()[:32]
        self.assertEqual(tools.REFUNDS, {key: {"order": 7, "amount": 5}})
        # the browser posts the approval again: nothing runs
        status, answer = self.request("POST", "/conversations/t-1/decisions",
                                      {"approve": ["call_2"]})
        self.assertEqual((status, answer["error"]),
                         (409, "call 'call_2' has already run; nothing was run"))
        status, history = self.request("GET", "/conversations/t-1")
        self.assertEqual([m["content"] for m in history["messages"]],
                         ["Please refund 5 on order 7", "Done: 5 refunded on order 7."])
        self.assertEqual(history["pending"], [])
        self.assertEqual(len({id(c) for c in self.clients}), len(self.clients))  # all workers

    def test_a_denied_refund_tells_the_model_why(self) -> None:
        self.ask_for_a_refund()
        self.emulator.script(reply("Sorry, I cannot refund that."))
        status, answer = self.request("POST", "/conversations/t-1/decisions",
                                      {"deny": {"call_2": "refunds over 3 need a manager"}})
        self.assertEqual((status, answer["stop_reason"]), (200, "completed"))
        self.assertEqual(tools.REFUNDS, {})
        sent = self.emulator.chat_requests[-1]["messages"]
        self.assertIn({"role": "tool", "tool_call_id": "call_2", "content":
                       "Error: not run: the call was denied: refunds over 3 need a manager"},
                      sent)

    def test_a_message_while_a_refund_waits_and_bad_decisions_are_refused(self) -> None:
        self.ask_for_a_refund()
        status, answer = self.request("POST", "/conversations/t-1/messages", {"text": "hello?"})
        self.assertEqual((status, answer["pending"]), (409, ["call_2"]))
        status, answer = self.request("POST", "/conversations/t-1/decisions",
                                      {"approve": ["call_9"]})
        self.assertEqual(status, 409)
        self.assertIn("'call_9' is not pending", answer["error"])
        status, _ = self.request("POST", "/conversations/t-1/decisions", {"approve": "call_2"})
        self.assertEqual(status, 400)
        self.assertEqual(tools.REFUNDS, {})
        self.assertEqual(len(self.emulator.chat_requests), 1)

    def test_two_requests_of_one_conversation_at_once_one_is_refused(self) -> None:
        self.emulator.script(reply("Hello!"))
        self.request("POST", "/conversations/t-2/messages", {"text": "hi"})
        outcome: dict[str, int] = {}
        calls = iter(range(1_000_000))

        def answer(body: dict) -> dict:
            # request A's model call (the first) waits while request B is served and saved
            if next(calls) == 0:
                outcome["B"] = Client().post("/conversations/t-2/messages", {"text": "B"},
                                             content_type="application/json").status_code
            return reply("ok")

        self.emulator.responder = answer
        outcome["A"] = Client().post("/conversations/t-2/messages", {"text": "A"},
                                     content_type="application/json").status_code
        self.assertEqual(outcome, {"B": 200, "A": 409})
        status, history = self.request("GET", "/conversations/t-2")
        self.assertEqual([m["content"] for m in history["messages"]], ["hi", "Hello!", "B", "ok"])
        self.assertEqual(history["version"], 2)
