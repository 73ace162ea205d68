import { availableParallelism } from 'node:os';
import { ConfigError, loadConfig } from '../../src/config';

describe('KMS_WORKERS', () => {
  it('defaults to one worker per CPU, at most four', () => {
    const expected = Math.min(availableParallelism(), 4);
    expect(loadConfig({ KMS_DATA_DIR: '/tmp/kms-config-test' }).workers).toBe(expected);
    expect(loadConfig({ KMS_DATA_DIR: '/tmp/kms-config-test', KMS_WORKERS: 'auto' }).workers).toBe(expected);
  });

  it('takes a number from 1 to 64', () => {
    expect(loadConfig({ KMS_WORKERS: '1' }).workers).toBe(1);
    expect(loadConfig({ KMS_WORKERS: '6' }).workers).toBe(6);
  });

  it.each(['0', '65', 'two', '-1'])('refuses %s', (value) => {
    expect(() => loadConfig({ KMS_WORKERS: value })).toThrow(ConfigError);
  });
});
