import { MemoryStorage } from 'webhook-dispatcher';
import { describeStorageConformance } from 'webhook-dispatcher/testing';

describeStorageConformance('MemoryStorage', () => new MemoryStorage());
