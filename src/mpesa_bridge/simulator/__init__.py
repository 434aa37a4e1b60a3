"""An offline Daraja that a Daraja client cannot tell from the sandbox.

OAuth, STK Push and STK Query with Daraja's paths, shapes and error envelopes, and the STK callback
POSTed to CallBackURL after a delay. The paying phone picks the outcome (`MAGIC_NUMBERS`).
This adapter imports nothing from the rest of mpesa_bridge.

    async with Simulator(SimulatorConfig(callback_delay=0.5)) as simulator:
        app.mount("/simulator", simulator.app)
"""

from .callbacks import callback_body
from .config import SANDBOX_PASSKEY, SANDBOX_SHORTCODE, SimulatorConfig
from .errors import GatewayError, WrongConsumerCredentials
from .receiver import CallbackReceiver, ReceivedRequest
from .scenarios import DEFAULT_SCENARIO, MAGIC_NUMBERS, Delivery, Scenario, normalise_msisdn, scenario_for
from .server import Simulator, create_app, serve
from .state import CallbackAttempt, PushRecord
from .validation import stk_password

__all__ = [
    "DEFAULT_SCENARIO",
    "MAGIC_NUMBERS",
    "SANDBOX_PASSKEY",
    "SANDBOX_SHORTCODE",
    "CallbackAttempt",
    "CallbackReceiver",
    "Delivery",
    "GatewayError",
    "PushRecord",
    "ReceivedRequest",
    "Scenario",
    "Simulator",
    "SimulatorConfig",
    "WrongConsumerCredentials",
    "callback_body",
    "create_app",
    "normalise_msisdn",
    "scenario_for",
    "serve",
    "stk_password",
]
