/**
 * ShopCtrl's table of trigger events ("Default webhook payloads"), row by row: each event name as
 * the document spells it, the `{ entity, event }` pair the dispatcher uses for it, and the fields
 * its default payload's `entityData` carries. The table is keyed by event, not by entity: "Order
 * Fully Shipped" is an order event that carries shipment fields, "Order Invoices All Paid" one that
 * carries invoice fields.
 *
 * Naming: the entity is the snake_case of the thing the event is about (`purchase_order`); events
 * that create, change or delete it are `Create`, `Edit` and `Delete` (the names Pakk sends in
 * `X-Pakk-Webhook-TriggerEvent`), every other event is the rest of its name in PascalCase.
 *
 * @module
 */
import { WebhookValidationError } from './errors.js';
import type { Trigger } from './storage/types.js';

/** One row of ShopCtrl's trigger event table. */
export interface ShopCtrlEvent extends Trigger {
  /** The event's name as ShopCtrl's document spells it, e.g. `Order Fully Shipped`. */
  readonly name: string;
  /** The fields of `entityData` in the event's default payload, in the document's order. */
  readonly fields: readonly string[];
}

const PRODUCT = ['ProductId', 'ProductCode', 'ShopGroupId'];
const PRODUCT_PACKAGE = ['ProductPackageId', 'ProductId', 'ShopGroupId'];
const PRODUCT_SELECTION_PRODUCT = ['ProductId', 'ProductCode', 'ProductSelectionProductId', 'ShopId'];
const PRODUCT_GROUP = ['ProductGroupId', 'ProductGroupName'];
const ORDER_COMMENT = ['OrderCommentId', 'OrderId', 'OrderCode', 'TicketId', 'TicketCode'];
const INVOICE = ['InvoiceId', 'InvoiceCode', 'OrderId', 'OrderCode'];
const SHOP = ['ShopId'];
const PURCHASE_ORDER = ['PurchaseOrderId', 'PurchaseOrderCode', 'SupplierId', 'WarehouseId', 'OrderId', 'OrderCode', 'ShopId'];
const SHIPMENT = ['ParcelId', 'TrackingCode', 'OrderShipmentId', 'OrderShipmentCode', 'OrderId', 'OrderCode'];
const RETURN = ['OrderReturnId', 'OrderReturnCode', 'OrderId', 'OrderCode'];
const TICKET = ['TicketId', 'TicketCode', 'OrderId', 'OrderCode', 'ShopId'];
const TICKET_HANDLER = [
  'TicketId',
  'TicketCode',
  'OrderId',
  'OrderCode',
  'HandlingEmployeeGroupId',
  'HandlingEmployeeId',
  'OldHandlingEmployeeGroupId',
  'OldHandlingEmployeeId',
];
const TICKET_MESSAGE = ['TicketId', 'TicketCode', 'OrderId', 'OrderCode', 'ShopId', 'TicketMessageDirection'];

const row = (name: string, entity: string, event: string, fields: readonly string[]): ShopCtrlEvent =>
  Object.freeze({ name, entity, event, fields: Object.freeze([...fields]) });

/** Every row of ShopCtrl's trigger event table, in the document's order. */
export const SHOPCTRL_EVENTS: readonly ShopCtrlEvent[] = Object.freeze([
  row('Product Created', 'product', 'Create', PRODUCT),
  row('Product Changed', 'product', 'Edit', PRODUCT),
  row('Product Deleted', 'product', 'Delete', PRODUCT),
  row('Product Available Stock Changed', 'product', 'AvailableStockChanged', PRODUCT),
  row('Product Locked', 'product', 'Locked', PRODUCT),
  row('Product Unlocked', 'product', 'Unlocked', PRODUCT),
  row('Product Dimensions Changed', 'product', 'DimensionsChanged', PRODUCT),
  row('Product Package Created', 'product_package', 'Create', PRODUCT_PACKAGE),
  row('Product Package Changed', 'product_package', 'Edit', PRODUCT_PACKAGE),
  row('Product Package Deleted', 'product_package', 'Delete', PRODUCT_PACKAGE),
  row('Product Selection Product Changed', 'product_selection_product', 'Edit', PRODUCT_SELECTION_PRODUCT),
  row('Product Selection Product Deleted', 'product_selection_product', 'Delete', PRODUCT_SELECTION_PRODUCT),
  row('Product Group Changed', 'product_group', 'Edit', PRODUCT_GROUP),
  row('Product Group Deleted', 'product_group', 'Delete', PRODUCT_GROUP),
  row('Order Customer Rating Changed', 'order', 'CustomerRatingChanged', ['OrderId', 'OrderCode', 'CustomerRating']),
  row('Order Comment Changed', 'order', 'CommentChanged', ORDER_COMMENT),
  row('Invoice Payments Done', 'invoice', 'PaymentsDone', INVOICE),
  row('Order Invoices All Paid', 'order', 'InvoicesAllPaid', INVOICE),
  row('Invoice Payments Not Done', 'invoice', 'PaymentsNotDone', INVOICE),
  row('Invoice Payments Partial Done', 'invoice', 'PaymentsPartialDone', INVOICE),
  row('Non Draft Invoice Saved', 'invoice', 'NonDraftSaved', INVOICE),
  row('Non Draft Credit Invoice Saved', 'invoice', 'NonDraftCreditSaved', INVOICE),
  row('Order Invoices Created', 'order', 'InvoicesCreated', INVOICE),
  row('New Shop Saved', 'shop', 'Create', SHOP),
  row('Init New Shop', 'shop', 'Init', SHOP),
  row('Purchase Order Created', 'purchase_order', 'Create', PURCHASE_ORDER),
  row('Purchase Order Delivery Provisioned', 'purchase_order', 'DeliveryProvisioned', PURCHASE_ORDER),
  row('Purchase Order Delivery Received', 'purchase_order', 'DeliveryReceived', PURCHASE_ORDER),
  row('Purchase Order Handed Over', 'purchase_order', 'HandedOver', PURCHASE_ORDER),
  row('Purchase Order Provisioned', 'purchase_order', 'Provisioned', PURCHASE_ORDER),
  row('Purchase Order Received', 'purchase_order', 'Received', PURCHASE_ORDER),
  row('Purchase Order Main Status Changed', 'purchase_order', 'MainStatusChanged', PURCHASE_ORDER),
  row('Purchase Order Submit Status Changed', 'purchase_order', 'SubmitStatusChanged', PURCHASE_ORDER),
  row('Purchase Order Payment Status Changed', 'purchase_order', 'PaymentStatusChanged', PURCHASE_ORDER),
  row('Purchase Order Provision Status Changed', 'purchase_order', 'ProvisionStatusChanged', PURCHASE_ORDER),
  row('Purchase Order Custom Status Changed', 'purchase_order', 'CustomStatusChanged', PURCHASE_ORDER),
  row('Shipment Created', 'shipment', 'Create', SHIPMENT),
  row('Shipment Delivered', 'shipment', 'Delivered', SHIPMENT),
  row('Parcel Status Change', 'parcel', 'StatusChange', SHIPMENT),
  row('Parcel Pickup Done', 'parcel', 'PickupDone', SHIPMENT),
  row('New Parcel Added', 'parcel', 'Create', SHIPMENT),
  row('Shipment Picked', 'shipment', 'Picked', SHIPMENT),
  row('Shipment Packed', 'shipment', 'Packed', SHIPMENT),
  row('Shipment Shipped', 'shipment', 'Shipped', SHIPMENT),
  // The document prints "Order Shipment Status hanged": the name is matched with that typo too.
  row('Order Shipment Status Changed', 'order', 'ShipmentStatusChanged', SHIPMENT),
  row('Order Fully Shipped', 'order', 'FullyShipped', SHIPMENT),
  row('Shipment Handover', 'shipment', 'Handover', SHIPMENT),
  row('Main Order Return Status Changed', 'return', 'MainStatusChanged', RETURN),
  row('Order Return Changed', 'return', 'Edit', RETURN),
  row('Order Return Created', 'return', 'Create', RETURN),
  row('Product Property Def Changed', 'product_property_def', 'Edit', ['Id', 'Code']),
  row('Product Property Def Deleted', 'product_property_def', 'Delete', ['Id', 'Code']),
  row('Product Brand Changed', 'product_brand', 'Edit', ['Id', 'Name']),
  row('Product Brand Deleted', 'product_brand', 'Delete', ['Id', 'Name']),
  row('Voip Call Changed', 'voip_call', 'Edit', ['Id']),
  row('Ticket Main Status Changed', 'ticket', 'MainStatusChanged', TICKET),
  row('Ticket Created', 'ticket', 'Create', TICKET),
  row('Ticket Handling Employee Group Changed', 'ticket', 'HandlingEmployeeGroupChanged', TICKET_HANDLER),
  row('Ticket Handling Employee Changed', 'ticket', 'HandlingEmployeeChanged', TICKET_HANDLER),
  row('Ticket Incoming Message', 'ticket', 'IncomingMessage', TICKET_MESSAGE),
  row('Ticket Outcoming Message', 'ticket', 'OutcomingMessage', TICKET_MESSAGE),
]);

/** Spellings found in the document itself, mapped to the row they mean. */
const DOCUMENT_SPELLINGS: ReadonlyMap<string, string> = new Map([['order shipment status hanged', 'order shipment status changed']]);

/** Lower case, single spaces: `order  fully shipped ` and `Order Fully Shipped` are one name. */
const normalise = (name: string): string => name.trim().replace(/\s+/g, ' ').toLowerCase();

const byName = new Map(SHOPCTRL_EVENTS.map((e) => [normalise(e.name), e]));

/**
 * The `{ entity, event }` pair of a ShopCtrl trigger event, by the name its document gives it
 * (letter case and spacing do not matter): use it in a webhook's `triggers` and in `emit()`.
 *
 * ```ts
 * await dispatcher.createWebhook({ url, triggers: [shopCtrlEvent('Order Fully Shipped')] });
 * await dispatcher.emit({ ...shopCtrlEvent('Order Fully Shipped'), data: shipment });
 * // → entityData: { ParcelId, TrackingCode, OrderShipmentId, OrderShipmentCode, OrderId, OrderCode }
 * ```
 *
 * @throws {WebhookValidationError} naming `name` when no row of the table has that name.
 */
export function shopCtrlEvent(name: string): Trigger {
  const key = typeof name === 'string' ? normalise(name) : '';
  const found = byName.get(DOCUMENT_SPELLINGS.get(key) ?? key);
  if (!found) {
    throw new WebhookValidationError(
      [{ path: 'name', message: `is not a ShopCtrl trigger event (${typeof name === 'string' ? JSON.stringify(name) : typeof name}); SHOPCTRL_EVENTS lists them` }],
      { context: 'shopCtrlEvent' },
    );
  }
  return { entity: found.entity, event: found.event };
}
