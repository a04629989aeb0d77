/* A stand-in for the Kinova Gen2 SDK command layer (Kinova.API.USBCommandLayerUbuntu.so), compiled by
 * the tests. It exports the SDK's function names with the SDK's struct layouts and simulates the arm:
 * joint angles integrate the last ANGULAR_VELOCITY command, which the arm drops when no new one comes
 * within FAKE_STREAM_TIMEOUT_S (as a real Gen2 stops when the stream stops). Extra `Fake*` functions
 * let the test read what reached the "arm" and break the link.
 *
 * FAKE_KINOVA_START_DEG="a,b,c,..." in the environment sets the joint angles at the first InitAPI.
 *
 * Build: gcc -shared -fPIC -O2 -DACTUATORS=7 -o libfake_kinova.so fake_kinova_gen2.c -lm
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>

#ifndef ACTUATORS
#define ACTUATORS 7
#endif
#define SERIAL_LENGTH 20
#define MAX_KINOVA_DEVICE 20
#define NO_ERROR_KINOVA 1
#define ERROR_LINK 1015
#define ANGULAR_VELOCITY 8
#define FAKE_STREAM_TIMEOUT_S 0.05

typedef struct { char SerialNumber[SERIAL_LENGTH]; char Model[SERIAL_LENGTH]; int VersionMajor, VersionMinor, VersionRelease, DeviceType, DeviceID; } KinovaDevice;
typedef struct { float a[ACTUATORS]; } AngularInfo;
typedef struct { float X, Y, Z, ThetaX, ThetaY, ThetaZ; } CartesianInfo;
typedef struct { float Finger1, Finger2, Finger3; } FingersPosition;
typedef struct { AngularInfo Actuators; FingersPosition Fingers; } AngularPosition;
typedef struct { float p[9]; } Limitation;
typedef struct { int Type; float Delay; CartesianInfo CartesianPosition; AngularInfo Actuators; int HandMode; FingersPosition Fingers; } UserPosition;
typedef struct { UserPosition Position; int LimitationsActive; int SynchroType; Limitation Limitations; } TrajectoryPoint;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static double pos_deg[ACTUATORS], vel_deg_s[ACTUATORS], max_abs_vel_deg_s[ACTUATORS];
static double last_cmd_s = -1.0, last_update_s = -1.0;
static int initialised, active, angular, control_started, broken;
static long sends, erases, other_types;

static double now_s(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

static void advance(void) {  /* integrate up to now; called with the lock held */
    double t = now_s();
    if (last_update_s >= 0) {
        double dt = t - last_update_s;
        int streaming = last_cmd_s >= 0 && t - last_cmd_s < FAKE_STREAM_TIMEOUT_S;
        for (int i = 0; i < ACTUATORS; i++) {
            if (!streaming) vel_deg_s[i] = 0.0;
            pos_deg[i] += vel_deg_s[i] * dt;
        }
    }
    last_update_s = t;
}

static int started;

int InitAPI(void) {
    pthread_mutex_lock(&lock);
    const char *start = getenv("FAKE_KINOVA_START_DEG");
    if (!started && start) {
        char *end;
        for (int i = 0; i < ACTUATORS && *start; i++, start = *end ? end + 1 : end) pos_deg[i] = strtod(start, &end);
    }
    started = initialised = 1;
    advance();
    pthread_mutex_unlock(&lock);
    return NO_ERROR_KINOVA;
}
int CloseAPI(void) { pthread_mutex_lock(&lock); initialised = active = angular = control_started = 0; pthread_mutex_unlock(&lock); return NO_ERROR_KINOVA; }

int GetDevices(KinovaDevice devices[MAX_KINOVA_DEVICE], int *result) {
    if (!initialised) { *result = ERROR_LINK; return 0; }
    memset(&devices[0], 0, sizeof(KinovaDevice));
    strcpy(devices[0].SerialNumber, "PJ00000001030");
    strcpy(devices[0].Model, "JACO2 6DOF-S");
    devices[0].DeviceID = 0;
    *result = NO_ERROR_KINOVA;
    return 1;
}

int SetActiveDevice(KinovaDevice device) { active = strcmp(device.SerialNumber, "PJ00000001030") == 0; return active ? NO_ERROR_KINOVA : ERROR_LINK; }
int StartControlAPI(void) { control_started = 1; return initialised ? NO_ERROR_KINOVA : ERROR_LINK; }
int StopControlAPI(void) { control_started = 0; return NO_ERROR_KINOVA; }
int SetAngularControl(void) { angular = 1; return initialised ? NO_ERROR_KINOVA : ERROR_LINK; }

int SendBasicTrajectory(TrajectoryPoint point) {
    pthread_mutex_lock(&lock);
    if (broken || !active || !control_started || !angular) { pthread_mutex_unlock(&lock); return ERROR_LINK; }
    advance();
    if (point.Position.Type == ANGULAR_VELOCITY) {
        for (int i = 0; i < ACTUATORS; i++) {
            vel_deg_s[i] = point.Position.Actuators.a[i];
            if (fabs(vel_deg_s[i]) > max_abs_vel_deg_s[i]) max_abs_vel_deg_s[i] = fabs(vel_deg_s[i]);
        }
        last_cmd_s = now_s();
    } else {
        other_types++;
    }
    sends++;
    pthread_mutex_unlock(&lock);
    return NO_ERROR_KINOVA;
}

static int get_angular(AngularPosition *out, int velocity) {
    pthread_mutex_lock(&lock);
    if (broken || !initialised) { pthread_mutex_unlock(&lock); return ERROR_LINK; }
    advance();
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < ACTUATORS; i++) out->Actuators.a[i] = (float)(velocity ? vel_deg_s[i] : pos_deg[i]);
    pthread_mutex_unlock(&lock);
    return NO_ERROR_KINOVA;
}
int GetAngularPosition(AngularPosition *out) { return get_angular(out, 0); }
int GetAngularVelocity(AngularPosition *out) { return get_angular(out, 1); }

int EraseAllTrajectories(void) {
    pthread_mutex_lock(&lock);
    if (broken) { pthread_mutex_unlock(&lock); return ERROR_LINK; }
    advance();
    for (int i = 0; i < ACTUATORS; i++) vel_deg_s[i] = 0.0;
    erases++;
    pthread_mutex_unlock(&lock);
    return NO_ERROR_KINOVA;
}

/* ---- test hooks ---- */
int FakeSizeof(int which) { return which == 0 ? (int)sizeof(TrajectoryPoint) : which == 1 ? (int)sizeof(AngularPosition) : (int)sizeof(KinovaDevice); }
void FakeSetPositionDeg(const double *deg) { pthread_mutex_lock(&lock); advance(); for (int i = 0; i < ACTUATORS; i++) pos_deg[i] = deg[i]; pthread_mutex_unlock(&lock); }
void FakeGetState(double *pos, double *vel, double *max_vel) {
    pthread_mutex_lock(&lock); advance();
    for (int i = 0; i < ACTUATORS; i++) { pos[i] = pos_deg[i]; vel[i] = vel_deg_s[i]; max_vel[i] = max_abs_vel_deg_s[i]; }
    pthread_mutex_unlock(&lock);
}
long FakeCount(int which) { return which == 0 ? sends : which == 1 ? erases : other_types; }
void FakeBreakLink(int on) { pthread_mutex_lock(&lock); broken = on; pthread_mutex_unlock(&lock); }
void FakeReset(void) {
    pthread_mutex_lock(&lock);
    memset(pos_deg, 0, sizeof pos_deg); memset(vel_deg_s, 0, sizeof vel_deg_s); memset(max_abs_vel_deg_s, 0, sizeof max_abs_vel_deg_s);
    sends = erases = other_types = 0; broken = 0; last_cmd_s = -1.0; last_update_s = -1.0;
    pthread_mutex_unlock(&lock);
}
