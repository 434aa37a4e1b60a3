/** The bridge's objects, as `/openapi.json` describes them (fields the SDK relies on are typed). */

export type Mode = "test" | "live";
export type PaymentStatus = "pending" | "unknown" | "succeeded" | "failed" | "cancelled" | "expired";
export const FINAL_PAYMENT_STATUSES: readonly PaymentStatus[] = ["succeeded", "failed", "cancelled", "expired"];

export interface Payment {
  id: string;
  object: "payment";
  mode: Mode;
  status: PaymentStatus;
  amount: number;
  currency: "KES";
  phone: string;
  account_reference: string;
  description: string;
  metadata: Record<string, unknown>;
  failure_code: string | null;
  failure_message: string | null;
  result_code: string | null;
  result_desc: string | null;
  mpesa_receipt_number: string | null;
  merchant_request_id: string | null;
  checkout_request_id: string | null;
  business_short_code: string;
  needs_attention: boolean;
  attention_reason: string | null;
  checkout_session_id: string | null;
  reversal_id?: string | null;
  reversed_at?: string | null;
  transaction_date: string | null;
  created_at: string;
  updated_at: string;
  completed_at: string | null;
  /** Only in the answer of a create (and its Idempotency-Key replays). */
  client_secret?: string;
}

export interface PaymentCreateParams {
  phone: string;
  amount: number;
  account_reference: string;
  description?: string;
  metadata?: Record<string, unknown>;
}

export interface ListParams {
  limit?: number;
  starting_after?: string;
}

export interface PaymentListParams extends ListParams {
  status?: PaymentStatus;
  phone?: string;
  reference?: string;
  created_gte?: string;
  created_lte?: string;
}

export interface Page<T> {
  object: "list";
  data: T[];
  has_more: boolean;
  next_cursor: string | null;
}

export interface PaymentTotals {
  object: "payment_totals";
  time_zone: string;
  currency: "KES";
  created_gte: string;
  created_lte: string;
  data: Array<Record<string, unknown>>;
  total: Record<string, unknown>;
}

export interface Evidence {
  id: string;
  source: string;
  verdict: string;
  result_code: string | null;
  result_desc: string | null;
  callback_id: string | null;
  note: string | null;
  created_at: string;
}

export type CheckoutSessionStatus = "open" | "complete" | "expired";

export interface CheckoutPaymentSummary {
  id: string;
  status: PaymentStatus;
  failure_code: string | null;
  failure_message: string | null;
  mpesa_receipt_number: string | null;
  [field: string]: unknown;
}

export interface CheckoutSession {
  id: string;
  object: "checkout_session";
  mode: Mode;
  status: CheckoutSessionStatus;
  amount: number | null;
  amount_min: number | null;
  amount_max: number | null;
  currency: "KES";
  reference: string;
  description: string;
  metadata?: Record<string, unknown> | null;
  url: string;
  success_url: string | null;
  cancel_url: string | null;
  payment_in_flight: boolean;
  paid_payment_id: string | null;
  /** The C2B payment (paybill or till) that completed the session instead of a payment. */
  paid_c2b_payment_id?: string | null;
  payment_link_id: string | null;
  /** The latest payment (client-secret reads and the pay answer). */
  payment?: CheckoutPaymentSummary | null;
  expires_at: string;
  created_at: string;
  updated_at: string;
  completed_at: string | null;
  /** Only in the answer of a create. */
  client_secret?: string | null;
}

export interface CheckoutSessionCreateParams {
  amount?: number;
  amount_min?: number;
  amount_max?: number;
  reference: string;
  description?: string;
  metadata?: Record<string, unknown>;
  expires_at?: string;
  success_url?: string;
  cancel_url?: string;
}

export interface CheckoutSessionPayParams {
  phone: string;
  amount?: number;
}

export interface PaymentLink {
  id: string;
  object: "payment_link";
  mode: Mode;
  slug: string;
  url: string;
  title: string;
  description: string | null;
  amount: number | null;
  amount_min: number | null;
  amount_max: number | null;
  currency: "KES";
  active: boolean;
  expires_at: string | null;
  max_payments: number | null;
  collect: string[];
  metadata: Record<string, unknown>;
  created_at: string;
  updated_at: string;
  payments_succeeded?: number;
  amount_collected?: number;
}

export interface PaymentLinkCreateParams {
  title: string;
  description?: string;
  amount?: number;
  amount_min?: number;
  amount_max?: number;
  active?: boolean;
  expires_at?: string;
  max_payments?: number;
  collect?: string[];
  metadata?: Record<string, unknown>;
}

export interface PaymentLinkUpdateParams {
  title?: string;
  description?: string;
  active?: boolean;
  expires_at?: string | null;
  max_payments?: number | null;
}

export interface WebhookEndpoint {
  id: string;
  object: "webhook_endpoint";
  mode: Mode;
  url: string;
  enabled_events: string[];
  description: string | null;
  enabled: boolean;
  disabled_reason: string | null;
  disabled_at: string | null;
  failing_since: string | null;
  previous_secret_expires_at: string | null;
  created_at: string;
  updated_at: string;
  /** Only in the answers of create and rotateSecret. */
  secret?: string;
}

export interface WebhookEndpointCreateParams {
  url: string;
  enabled_events: string[];
  description?: string;
  enabled?: boolean;
}

export type WebhookEndpointUpdateParams = Partial<WebhookEndpointCreateParams>;

export interface Event<T = Record<string, unknown>> {
  id: string;
  object: "event";
  type: string;
  created: string;
  mode: Mode;
  late_correction: boolean;
  data: { object: T };
}

export interface EventDetail extends Event {
  deliveries: Array<Record<string, unknown>>;
}

export interface EventListParams extends ListParams {
  type?: string;
  subject?: string;
  payment?: string;
  created_gte?: string;
  created_lte?: string;
}

export interface ApiKey {
  object: "api_key";
  id: string;
  mode: Mode;
  display?: string;
  expires_at?: string | null;
  revoked_at?: string | null;
  secret_key?: string;
  [field: string]: unknown;
}

export interface QrCodeCreateParams {
  merchant_name: string;
  reference: string;
  amount: number;
  trx_code: string;
  cpi: string;
  size?: number;
}

export interface Project {
  id: string;
  object: "project";
  name: string;
  created_at: string;
  daraja: Record<string, unknown>;
  secret_keys?: { test?: string; live?: string };
  signing_secret?: string | null;
  require_signed_requests?: boolean;
  [field: string]: unknown;
}

export interface Health {
  status: string;
  checks: Record<string, string>;
}

/** How Daraja's C2B validation calls are answered (docs/c2b.md). */
export interface C2BSettings {
  object: "c2b_settings";
  validation_rule: "accept_all" | "known_references" | "merchant";
  merchant_url: string | null;
  default_action: "accept" | "reject";
  signing_secret: string | null;
  updated_at: string | null;
}

export interface C2BSettingsUpdateParams {
  validation_rule?: "accept_all" | "known_references" | "merchant";
  merchant_url?: string | null;
  default_action?: "accept" | "reject";
  rotate_secret?: boolean;
}

export interface C2BRegistration {
  id: string;
  object: "c2b_registration";
  short_code: string;
  response_type: "Completed" | "Cancelled";
  validation: boolean;
  api_version: 1 | 2;
  validation_url: string;
  confirmation_url: string;
  status: string;
  created_at: string | null;
  updated_at: string | null;
}

export interface C2BRegistrationCreateParams {
  short_code?: string;
  response_type?: "Completed" | "Cancelled";
  validation?: boolean;
  api_version?: 1 | 2;
}

/** A customer's till or paybill payment (`c2b_…`). */
export interface C2BPayment {
  id: string;
  object: "c2b_payment";
  status: "unmatched" | "matched" | "dismissed";
  trans_id: string;
  transaction_type: string;
  trans_time: string | null;
  amount: number;
  short_code: string;
  bill_ref_number: string;
  invoice_number: string;
  org_account_balance: string | null;
  third_party_trans_id: string;
  msisdn: string;
  msisdn_kind: string;
  customer_name: string;
  matched: { type: "expected_payment" | "checkout_session" | "payment_link"; id: string; by: "auto" | "manual"; at: string | null } | null;
  duplicate_of: string | null;
  note: string | null;
  created_at: string | null;
  updated_at: string | null;
  suggestions?: Array<{ type: string; id: string; reference: string; amount: number | null; score: number; reasons: string[] }>;
  validations?: Array<{ id: string; accepted: boolean; result_code: string; decided_by: string; latency_ms: number; created_at: string | null }>;
  same_reference?: string[];
}

export interface C2BPaymentListParams extends ListParams {
  status?: "unmatched" | "matched" | "dismissed";
  reference?: string;
}

export interface ExpectedPayment {
  id: string;
  object: "expected_payment";
  status: "open" | "paid" | "cancelled";
  reference: string;
  amount: number;
  phone: string | null;
  description: string;
  metadata: Record<string, unknown>;
  c2b_payment_id: string | null;
  paid_at: string | null;
  cancelled_at: string | null;
  created_at: string | null;
}

export interface ExpectedPaymentCreateParams {
  reference: string;
  amount: number;
  phone?: string;
  description?: string;
  metadata?: Record<string, unknown>;
}

export interface ExpectedPaymentListParams extends ListParams {
  status?: "open" | "paid" | "cancelled";
}

/** A reversal (`rev_…`) of a succeeded payment's whole amount. */
export interface Reversal {
  id: string;
  object: "reversal";
  mode: Mode;
  payment_id: string;
  status: "sending" | "sent" | "succeeded" | "failed" | "unknown";
  amount: number;
  currency: "KES";
  original_receipt: string;
  receipt: string | null;
  remarks: string;
  failure_code: string | null;
  failure_message: string | null;
  result_code: string | null;
  result_desc: string | null;
  conversation_id: string | null;
  originator_conversation_id: string | null;
  created_at: string;
  updated_at: string;
  sent_at: string | null;
  completed_at: string | null;
}

export interface ReversalListParams extends ListParams {
  payment_id?: string;
}

/** One account of a balance query: whole shillings (cents dropped, rounded down). */
export interface AccountBalance {
  name: string;
  currency: string;
  available: number;
  amounts: number[];
}

/** An Account Balance query (`bq_…`). */
export interface BalanceQuery {
  id: string;
  object: "balance_query";
  mode: Mode;
  status: "pending" | "completed" | "failed";
  short_code: string;
  accounts: AccountBalance[];
  failure_code: string | null;
  failure_message: string | null;
  result_code: string | null;
  result_desc: string | null;
  conversation_id: string | null;
  balances_at: string | null;
  created_at: string;
  updated_at: string;
  completed_at: string | null;
}

export type PayoutStatus =
  | "pending_approval"
  | "approved"
  | "rejected"
  | "queued"
  | "sending"
  | "sent"
  | "unknown"
  | "succeeded"
  | "failed";

/** A B2C payout (`po_…`). `unknown` is settled by Transaction Status, never sent again. */
export interface Payout {
  id: string;
  object: "payout";
  mode: Mode;
  status: PayoutStatus;
  amount: number;
  currency: "KES";
  phone: string;
  command_id: string;
  remarks: string;
  occasion: string | null;
  metadata: Record<string, unknown>;
  short_code: string;
  api_version: "v3" | "v1";
  originator_conversation_id: string;
  conversation_id: string | null;
  receipt: string | null;
  recipient_name: string | null;
  result_code: string | null;
  result_desc: string | null;
  failure_code: string | null;
  failure_message: string | null;
  created_by: string;
  approved_by: string | null;
  approved_at: string | null;
  rejected_by: string | null;
  rejection_reason: string | null;
  needs_attention: boolean;
  attention_reason: string | null;
  created_at: string;
  updated_at: string;
  completed_at: string | null;
}

export interface PayoutCreateParams {
  phone: string;
  amount: number;
  command_id?: "BusinessPayment" | "SalaryPayment" | "PromotionPayment";
  remarks?: string;
  occasion?: string;
  metadata?: Record<string, unknown>;
}

export interface PayoutSettings {
  object: "payout_settings";
  approval_required: boolean;
  max_amount: number;
  daily_limit: number;
  updated_at: string | null;
}

/** A Transaction Status query (`tsq_…`): `pending` until Daraja's Result comes. */
export interface TransactionStatusQuery {
  id: string;
  object: "transaction_status_query";
  mode: Mode;
  status: "pending" | "completed" | "failed" | "timed_out";
  transaction_id: string | null;
  originator_conversation_id: string | null;
  short_code: string;
  payout_id: string | null;
  reversal_id: string | null;
  conversation_id: string | null;
  result_code: string | null;
  result_desc: string | null;
  result: Record<string, unknown> | null;
  failure_code: string | null;
  failure_message: string | null;
  created_at: string;
  updated_at: string;
  completed_at: string | null;
}
